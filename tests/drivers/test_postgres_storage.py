"""PostgreSQL storage behaviour beyond the contract: its own table, sliced reads, connection settings, outages."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa

from app.core.errors import BackendUnavailable
from app.drivers.sql import create_engine, postgres_url
from app.drivers.storage.base import CHUNK_SIZE
from app.drivers.storage.postgres import PostgresStorage, storage_table
from config import Config, ConfigError
from tests.drivers.storage_services import closed_port, postgres_config
from tests.services import POSTGRES_URL

MIB = 1024 * 1024
QUICK_SECONDS = 10
UNREACHABLE_URL = "postgresql+psycopg2://statesman:hunter2@127.0.0.1:{port}/statesman"


@pytest.fixture
def config(request: pytest.FixtureRequest) -> Config:
    return postgres_config(request)


@pytest.fixture
def storage(config: Config) -> Iterator[PostgresStorage]:
    driver = PostgresStorage.from_config(config)
    yield driver
    driver.close()


@pytest.fixture
def inspector_engine() -> Iterator[sa.Engine]:
    engine = create_engine(POSTGRES_URL)
    yield engine
    engine.dispose()


def test_table_is_created_when_the_driver_is_built(
    storage: PostgresStorage, config: Config, inspector_engine: sa.Engine
) -> None:
    columns = {c["name"]: c for c in sa.inspect(inspector_engine).get_columns(config.storage_postgres_table)}
    assert set(columns) == {"state_key", "data", "size", "created_at"}
    assert not columns["data"]["nullable"]
    pk = sa.inspect(inspector_engine).get_pk_constraint(config.storage_postgres_table)
    assert pk["constrained_columns"] == ["state_key"]
    with inspector_engine.connect() as conn:
        storage_mode = conn.execute(
            sa.text("SELECT attstorage FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attname = 'data'"),
            {"t": config.storage_postgres_table},
        ).scalar()
    assert storage_mode == "e"  # EXTERNAL: slices are read without decompressing the whole value


def test_building_again_keeps_the_table_and_its_objects(storage: PostgresStorage, config: Config) -> None:
    storage.put("ws-a/sv-1", [b"kept"])
    again = PostgresStorage.from_config(config)
    try:
        assert b"".join(again.open("ws-a/sv-1")) == b"kept"
    finally:
        again.close()


def test_put_records_size_and_creation_time(storage: PostgresStorage, inspector_engine: sa.Engine) -> None:
    storage.put("ws-a/sv-1", [b"12345", b"678"])
    t = storage_table(storage.table.name)
    with inspector_engine.connect() as conn:
        row = conn.execute(sa.select(t.c.size, t.c.created_at).where(t.c.state_key == "ws-a/sv-1")).one()
    assert row.size == 8
    assert row.created_at is not None


def test_reads_come_in_slices(storage: PostgresStorage) -> None:
    data = bytes(range(256)) * (3 * MIB // 256) + b"tail"
    storage.put("ws-a/sv-1", [data])
    chunks = list(storage.open("ws-a/sv-1"))
    assert [len(c) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE, 4]
    assert all(isinstance(c, bytes) for c in chunks)
    assert b"".join(chunks) == data


def test_object_replaced_while_streaming_is_an_error_not_a_mix(storage: PostgresStorage) -> None:
    storage.put("ws-a/sv-1", [b"a" * (2 * MIB)])
    stream = storage.open("ws-a/sv-1")
    assert next(stream) == b"a" * CHUNK_SIZE
    storage.put("ws-a/sv-1", [b"b" * (2 * MIB)])
    with pytest.raises(BackendUnavailable, match="replaced or deleted"):
        next(stream)


def test_failed_overwrite_keeps_the_previous_object(storage: PostgresStorage) -> None:
    storage.put("ws-a/sv-1", [b"old"])

    def exploding() -> Iterator[bytes]:
        yield b"new"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        storage.put("ws-a/sv-1", exploding())
    assert b"".join(storage.open("ws-a/sv-1")) == b"old"


def test_libpq_connection_string_is_accepted(config: Config) -> None:
    url = sa.make_url(POSTGRES_URL)
    parts = {"host": url.host, "port": url.port, "user": url.username, "password": url.password, "dbname": url.database}
    dsn = " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)
    storage = PostgresStorage.from_config(replace(config, postgres_connection=dsn))
    try:
        storage.put("ws-a/sv-1", [b"via dsn"])
        assert b"".join(storage.open("ws-a/sv-1")) == b"via dsn"
    finally:
        storage.close()


@pytest.mark.parametrize(
    ("connection", "database_url", "expected"),
    [
        (None, "postgresql://u:p@db:5432/taco", "postgresql+psycopg2://u:p@db:5432/taco?connect_timeout=5"),
        ("postgres://u:p@db/states", "sqlite:///x.db", "postgresql+psycopg2://u:p@db/states?connect_timeout=5"),
        (
            "host=db port=5433 user=u password=p dbname=states sslmode=require",
            "sqlite:///x.db",
            "postgresql+psycopg2://u:p@/states?connect_timeout=5&host=db&port=5433&sslmode=require",
        ),
        (
            "postgresql+psycopg2://u@db/states?connect_timeout=2",
            "sqlite:///x.db",
            "postgresql+psycopg2://u@db/states?connect_timeout=2",
        ),
    ],
)
def test_connection_settings(connection: str | None, database_url: str, expected: str) -> None:
    config = Config(storage_backend="postgres", postgres_connection=connection, database_url=database_url)
    assert sa.make_url(postgres_url(config, "OPENTACO_STORAGE=postgres")) == sa.make_url(expected)


@pytest.mark.parametrize(
    ("connection", "database_url", "message"),
    [
        (None, "sqlite:////srv/taco.db", "needs a PostgreSQL database"),
        (None, "mysql+pymysql://root:secret@db/taco", "needs a PostgreSQL database"),
        ("host='unterminated", "sqlite:///x.db", "POSTGRES_CONNECTION: not a valid"),
    ],
)
def test_non_postgres_database_fails_fast(connection: str | None, database_url: str, message: str) -> None:
    config = Config(storage_backend="postgres", postgres_connection=connection, database_url=database_url)
    with pytest.raises(ConfigError, match=message) as caught:
        PostgresStorage.from_config(config)
    assert "secret" not in str(caught.value)


def _timed_unavailable(call: Callable[[], object]) -> BackendUnavailable:
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        call()
    assert time.monotonic() - started < QUICK_SECONDS
    assert "hunter2" not in str(caught.value)
    assert caught.value.backend == "postgres storage"
    return caught.value


def test_unreachable_database_fails_the_build_quickly() -> None:
    config = Config(storage_backend="postgres", postgres_connection=UNREACHABLE_URL.format(port=closed_port()))
    _timed_unavailable(lambda: PostgresStorage.from_config(config))


def test_unreachable_database_is_unavailable_never_not_found() -> None:
    config = Config(storage_backend="postgres", postgres_connection=UNREACHABLE_URL.format(port=closed_port()))
    storage = PostgresStorage(create_engine(postgres_url(config, "OPENTACO_STORAGE=postgres")), storage_table("states"))
    try:
        _timed_unavailable(lambda: storage.put("ws-a/sv-1", [b"{}"]))
        _timed_unavailable(lambda: storage.open("ws-a/sv-1"))
        _timed_unavailable(lambda: storage.delete("ws-a/sv-1"))
        _timed_unavailable(storage.check)
    finally:
        storage.close()
