"""Production backends: 1 MB state write and read throughput through the http backend on each storage driver."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterator

from bench.clients import SERIAL_BASE, PathClient, StateTemplate, run_threads, state_headers, terraform_state
from bench.report import Row, Stat
from bench.servers import BenchServer, cpu_seconds, moto_s3, postgres_database, postgres_reachable, statesman

MIB = 1024 * 1024
THREADS = 4
RUNS = 3
SECONDS = 2.0


def run() -> list[Row]:
    template = terraform_state(MIB)
    rows: list[Row] = []
    for driver in ("fs", "s3", "postgres", "memory"):
        with _settings(driver) as (env, workers, missing, note):
            if missing:
                rows += [
                    Row(f"{driver} storage: 1 MB state {kind} throughput, {THREADS} clients", None, notes=missing)
                    for kind in ("write", "read")
                ]
                continue
            with statesman(f"storage-{driver}", workers=workers, env=env) as server:
                writes, write_cpu, write_failures = _measure(server, template, write=True)
                reads, read_cpu, read_failures = _measure(server, template, write=False)
            for kind, rates, cpu, failures in (
                ("write", writes, write_cpu, write_failures),
                ("read", reads, read_cpu, read_failures),
            ):
                rows.append(
                    Row(
                        f"{driver} storage: 1 MB state {kind} throughput, {THREADS} clients",
                        Stat.of(rates, "MB/s"),
                        notes=f"each client its own workspace; {server.workers} worker(s); "
                        f"server CPU {cpu:.1f} ms/request" + (f"; {note}" if note else ""),
                        extra_notes=(failures,),
                    )
                )
    return rows


def _measure(server: BenchServer, template: StateTemplate, write: bool) -> tuple[list[float], float, str]:
    """MB/s per run, server CPU per request, failures note. Writes go to per-thread workspaces read afterwards."""
    serials = itertools.count(SERIAL_BASE + 1)
    prefix = "storage"
    rates: list[float] = []
    operations = 0
    cpu = 0.0
    first_failure = ""
    failures = 0

    def setup(i: int) -> object:
        return PathClient(server.url, server.authorization, server.state_path(f"{prefix}-{i}"))

    def put(state: object) -> None:
        assert isinstance(state, PathClient)
        body = template.body(next(serials))
        state.timed("POST", state.path, body, state_headers(body))

    def get(state: object) -> None:
        assert isinstance(state, PathClient)
        state.timed("GET", state.path)

    if not write:
        run_threads(THREADS, 0.1, setup, put)  # make sure every workspace has a state
    for number in range(RUNS + 1):  # run 0 warms up
        before = cpu_seconds(server.pids())
        result = run_threads(THREADS, SECONDS if number else 0.5, setup, put if write else get)
        if number:
            rates.append(result.operations * template.size / MIB / result.seconds)
            operations += result.operations
            cpu += cpu_seconds(server.pids()) - before
            failures += result.failures
            first_failure = first_failure or result.first_failure
    note = f"{failures} failed requests, first: {first_failure}" if failures else ""
    return rates, cpu * 1000 / max(operations, 1), note


@contextlib.contextmanager
def _settings(driver: str) -> Iterator[tuple[dict[str, str], int | None, str, str]]:
    """(server environment, workers, reason it cannot run, note) for ``driver``."""
    if driver == "s3":
        with moto_s3() as s3:
            yield s3.env, None, "", "moto's S3 emulation in the benchmark process, not AWS"
    elif driver == "postgres":
        if not postgres_reachable():
            yield {}, None, "skipped: PostgreSQL not reachable", ""
        else:
            with postgres_database() as url:
                yield (
                    {
                        "OPENTACO_STORAGE": "postgres",
                        "POSTGRES_CONNECTION": url,
                        "STORAGE_POSTGRES_TABLE": f"states_{uuid.uuid4().hex[:8]}",
                    },
                    None,
                    "",
                    "",
                )
    elif driver == "memory":
        yield {"OPENTACO_STORAGE": "memory"}, 1, "", "one worker: the memory driver lives in one process"
    else:
        yield {"OPENTACO_STORAGE": driver}, None, "", ""
