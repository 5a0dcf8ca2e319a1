"""Lock + unlock cycles per second through the http backend (``LOCK`` then ``UNLOCK``, as Terraform sends them):
8 client threads on the default server (the target), then each lock driver at concurrency 1 and 16."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from bench.clients import LoadResult, PathClient, lock_info, run_threads
from bench.report import Row, Stat, Target
from bench.servers import (
    REDIS_URL,
    BenchServer,
    cpu_seconds,
    postgres_database,
    postgres_reachable,
    redis_reachable,
    statesman,
)

THREADS = 8
RUNS = 3
SECONDS = 3.0
DRIVERS = ("local", "redis", "postgres", "memory")
DRIVER_CONCURRENCY = (1, 16)
DRIVER_SECONDS = 2.0
LOCK_HEADERS = {"Content-Type": "application/json"}


def run() -> list[Row]:
    rows: list[Row] = []
    for driver in DRIVERS:
        with _settings(driver) as (env, workers, missing):
            if missing:
                rows += [Row(_driver_metric(driver, n), None, notes=missing) for n in DRIVER_CONCURRENCY]
                continue
            with statesman(f"locks-{driver}", workers=workers, env=env) as server:
                if driver == "local":
                    rates, cpu_ms, failures = measure_cycles(server, THREADS, RUNS, SECONDS)
                    rows.append(
                        Row(
                            f"lock + unlock cycles/s, {THREADS} client threads",
                            Stat.of(rates, "cycles/s"),
                            Target(">=", 500, "value", "cycles/s"),
                            notes=f"local (SQL row) locks on SQLite; each thread its own workspace; "
                            f"{SECONDS:.0f} s per run; server CPU {cpu_ms:.1f} ms/cycle",
                            extra_notes=(failures,),
                        )
                    )
                for threads in DRIVER_CONCURRENCY:
                    rates, cpu_ms, failures = measure_cycles(server, threads, RUNS, DRIVER_SECONDS)
                    rows.append(
                        Row(
                            _driver_metric(driver, threads),
                            Stat.of(rates, "cycles/s"),
                            notes=f"{server.workers} worker(s); server CPU {cpu_ms:.1f} ms/cycle",
                            extra_notes=(failures,),
                        )
                    )
    return rows


def _driver_metric(driver: str, threads: int) -> str:
    return f"{driver} locks: lock + unlock cycles/s, {threads} client{'s' if threads > 1 else ''}"


def measure_cycles(server: BenchServer, threads: int, runs: int, seconds: float) -> tuple[list[float], float, str]:
    """Cycles per second in each run, server CPU per cycle, and a note about failed requests ("" if none)."""
    rates: list[float] = []
    cycles = 0
    cpu = 0.0
    failed: list[LoadResult] = []
    run_id = uuid.uuid4().hex[:6]
    for number in range(runs + 1):  # run 0 warms up (creates the workspaces)
        before = cpu_seconds(server.pids())
        result = run_threads(
            threads,
            seconds if number else 1.0,
            lambda i: PathClient(server.url, server.authorization, server.state_path(f"lock-{run_id}-{i}")),
            _cycle,
        )
        if number:
            rates.append(result.rate)
            cycles += result.operations
            cpu += cpu_seconds(server.pids()) - before
            if result.failures:
                failed.append(result)
    note = ""
    if failed:
        note = f"{sum(r.failures for r in failed)} failed cycles, first: {failed[0].first_failure}"
    return rates, cpu * 1000 / max(cycles, 1), note


def _cycle(state: object) -> None:
    assert isinstance(state, PathClient)
    body = lock_info()
    state.timed("LOCK", state.path, body, LOCK_HEADERS)
    state.timed("UNLOCK", state.path, body, LOCK_HEADERS)


@contextlib.contextmanager
def _settings(driver: str) -> Iterator[tuple[dict[str, str], int | None, str]]:
    """Server environment and worker count for ``driver``, or a reason it cannot be measured."""
    if driver == "redis":
        if not redis_reachable():
            yield {}, None, f"skipped: Redis not reachable at {REDIS_URL}"
        else:
            yield {"LOCK_BACKEND": "redis", "REDIS_URL": REDIS_URL}, None, ""
    elif driver == "postgres":
        if not postgres_reachable():
            yield {}, None, "skipped: PostgreSQL not reachable"
        else:
            with postgres_database() as url:
                yield {"LOCK_BACKEND": "postgres", "POSTGRES_CONNECTION": url}, None, ""
    elif driver == "memory":
        yield {"LOCK_BACKEND": "memory"}, 1, ""  # the memory driver is refused with more than one worker
    else:
        yield {"LOCK_BACKEND": driver}, None, ""
