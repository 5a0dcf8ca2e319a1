"""Behaviour of the postgres lock driver beyond the contract: table creation, races across threads and processes."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from app.core.errors import BackendUnavailable, LockConflict
from app.drivers.locks import build_lock_driver
from app.drivers.locks.sql import SqlLockDriver, lock_table
from app.drivers.sql import create_engine
from config import Config, ConfigError
from tests.drivers.lock_services import postgres_config
from tests.services import POSTGRES_URL

INFO = '{"ID":"a","Operation":"OperationTypeApply","Who":"alice@host"}'
PASSWORD = "s3cret-Pa55word"
PROCESSES = 8


def _driver(config: Config) -> SqlLockDriver:
    driver = build_lock_driver(config)
    assert isinstance(driver, SqlLockDriver)
    return driver


@pytest.fixture
def config(request: pytest.FixtureRequest) -> Config:
    return postgres_config(request)


@pytest.fixture
def inspector_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(POSTGRES_URL)
    yield engine
    engine.dispose()


def test_the_table_is_created_and_reused(config: Config, inspector_engine: sa.Engine) -> None:
    assert not sa.inspect(inspector_engine).has_table(config.lock_postgres_table)
    first = _driver(config)
    try:
        first.acquire("ws-1", "a", INFO)
    finally:
        first.close()
    columns = {c["name"] for c in sa.inspect(inspector_engine).get_columns(config.lock_postgres_table)}
    assert columns == {"lock_key", "lock_id", "info", "created_at", "expires_at"}
    second = _driver(config)
    try:
        assert second.name == "postgres"
        assert second.get("ws-1").info == INFO
    finally:
        second.close()


def test_postgres_connection_wins_over_the_metadata_database(config: Config) -> None:
    locks = _driver(replace(config, database_url="sqlite:///unused.db"))
    try:
        assert locks.engine.dialect.name == "postgresql"
    finally:
        locks.close()


def test_the_metadata_database_is_used_without_postgres_connection(config: Config) -> None:
    locks = _driver(replace(config, postgres_connection=None, database_url=POSTGRES_URL))
    try:
        locks.check()
    finally:
        locks.close()


@pytest.mark.parametrize("url", ["sqlite:///data/taco.db", "mysql+pymysql://root@127.0.0.1:3306/taco", "not a url"])
def test_a_url_that_is_not_postgresql_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"LOCK_BACKEND=postgres.*DATABASE_URL"):
        _driver(replace(Config(), lock_backend="postgres", database_url=url))


def test_a_ttl_is_recorded_when_configured(request: pytest.FixtureRequest) -> None:
    locks = _driver(postgres_config(request, lock_ttl_seconds=600))
    try:
        held = locks.acquire("ws-1", "a", INFO)
        assert held.expires_at == held.created_at + dt.timedelta(seconds=600)
        assert locks.get("ws-1").expires_at == held.expires_at
    finally:
        locks.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unreachable_url() -> str:
    return f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1:{_closed_port()}/postgres"


def test_an_unreachable_dsn_fails_at_start_up_as_backend_unavailable() -> None:
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        _driver(replace(Config(), lock_backend="postgres", postgres_connection=_unreachable_url()))
    assert time.monotonic() - started < 5
    assert caught.value.backend == "postgres lock"
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    "operation",
    [
        lambda locks: locks.acquire("ws-1", "a", INFO),
        lambda locks: locks.release("ws-1", "a"),
        lambda locks: locks.get("ws-1"),
        lambda locks: locks.check(),
    ],
    ids=["acquire", "release", "get", "check"],
)
def test_an_unreachable_dsn_is_backend_unavailable(operation: Callable[[SqlLockDriver], Any]) -> None:
    locks = SqlLockDriver(create_engine(_unreachable_url()), lock_table("locks"), "postgres")
    try:
        with pytest.raises(BackendUnavailable) as caught:
            operation(locks)
    finally:
        locks.close()
    assert caught.value.backend == "postgres lock"
    assert PASSWORD not in str(caught.value)


def test_threads_with_their_own_connections_have_exactly_one_winner(config: Config) -> None:
    drivers = [_driver(config) for _ in range(8)]
    barrier = threading.Barrier(len(drivers))
    outcomes: list[tuple[str, str]] = []

    def contend(n: int) -> None:
        barrier.wait()
        try:
            drivers[n].acquire("ws-race", f"id-{n}", f'{{"ID":"id-{n}"}}')
            outcomes.append(("won", f"id-{n}"))
        except LockConflict as exc:
            outcomes.append(("lost", exc.holder.lock_id))

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(len(drivers))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for driver in drivers:
            driver.close()
    _assert_one_winner(outcomes, len(drivers))


def _contend_in_process(config: Config, n: int, barrier: Any, results: Any) -> None:
    """One process: build the driver (racing the others to create the table), then race for the lock."""
    try:
        locks = build_lock_driver(config)
    except Exception as exc:  # reported to the parent, which fails the test
        barrier.abort()
        results.put(("error", repr(exc)))
        return
    try:
        barrier.wait()
        locks.acquire("ws-race", f"id-{n}", f'{{"ID":"id-{n}"}}')
        results.put(("won", f"id-{n}"))
    except LockConflict as exc:
        results.put(("lost", exc.holder.lock_id))
    except Exception as exc:
        results.put(("error", repr(exc)))
    finally:
        close = getattr(locks, "close", None)
        if close:
            close()


@pytest.mark.slow
def test_processes_have_exactly_one_winner(config: Config) -> None:
    # fork: the children need only what this process has imported already; spawn re-imports the app in each (~5 s).
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES, timeout=60)
    results = context.Queue()
    processes = [
        context.Process(target=_contend_in_process, args=(config, n, barrier, results)) for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
        results.close()
        results.join_thread()
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    _assert_one_winner(outcomes, PROCESSES)


def _assert_one_winner(outcomes: list[tuple[str, str]], contenders: int) -> None:
    assert [o for o in outcomes if o[0] == "error"] == []
    winners = [lock_id for kind, lock_id in outcomes if kind == "won"]
    assert len(winners) == 1
    assert [lock_id for kind, lock_id in outcomes if kind == "lost"] == winners * (contenders - 1)
