"""Lock + unlock cycles per second through the http backend (``LOCK`` then ``UNLOCK``, as Terraform sends them):
8 client threads on the default server (the target, beside a do-nothing Flask LOCK/UNLOCK handler), then each lock
driver at concurrency 1 and 16."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bench.clients import LoadResult, PathClient, lock_info, run_threads
from bench.report import Row, Stat, Target
from bench.servers import (
    ORG,
    REDIS_URL,
    BenchServer,
    cpu_while,
    postgres_database,
    postgres_reachable,
    redis_reachable,
    reference_app,
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
                    rows.append(target_row(server))
                for threads in DRIVER_CONCURRENCY:
                    cycles = measure_cycles(server, threads, RUNS, DRIVER_SECONDS)
                    rows.append(
                        Row(
                            _driver_metric(driver, threads),
                            Stat.of(cycles.rates, "cycles/s"),
                            notes=f"{server.workers} worker(s); server CPU {cycles.cpu_ms:.1f} ms/cycle",
                            extra_notes=(cycles.failures,),
                        )
                    )
    return rows


def target_row(server: BenchServer) -> Row:
    """The target: ``THREADS`` threads on the default server, run by run against do-nothing Flask LOCK/UNLOCK."""
    run_id = uuid.uuid4().hex[:6]
    with reference_app({}) as flask_app:
        ours = Cycles(server.url, server.authorization, server.pids, lambda i: server.state_path(f"t-{run_id}-{i}"))
        floor = Cycles(flask_app.url, None, flask_app.pids, lambda i: f"/lock/{ORG}/lock-{i}")
        for number in range(RUNS + 1):  # run 0 warms up (and creates our workspaces)
            for side in (ours, floor):
                side.run(THREADS, SECONDS if number else 1.0, counted=bool(number))
    flask = Stat.of(floor.rates, "cycles/s")
    return Row(
        f"lock + unlock cycles/s, {THREADS} client threads",
        Stat.of(ours.rates, "cycles/s"),
        Target(">=", 500, "value", "cycles/s"),
        flask,
        "do-nothing Flask LOCK + UNLOCK",
        notes=f"local (SQL row) locks on SQLite; each thread its own workspace; {SECONDS:.0f} s per run; "
        f"server CPU/cycle: ours {ours.cpu_ms:.1f} ms, do-nothing Flask {floor.cpu_ms:.1f} ms",
        extra_notes=(ours.failures, floor.failures),
        flask=flask,
    )


def _driver_metric(driver: str, threads: int) -> str:
    return f"{driver} locks: lock + unlock cycles/s, {threads} client{'s' if threads > 1 else ''}"


@dataclass
class Cycles:
    """Lock + unlock cycles against one server, ``path(i)`` for thread i: the rate of each counted run, and the
    cycles, server CPU and failures of all of them."""

    url: str
    authorization: str | None
    pids: Callable[[], list[int]]
    path: Callable[[int], str]
    rates: list[float] = field(default_factory=list)
    cycles: int = 0
    cpu: float = 0.0
    failed: list[LoadResult] = field(default_factory=list)

    def run(self, threads: int, seconds: float, counted: bool = True) -> None:
        result, used = cpu_while(self.pids(), lambda: run_threads(threads, seconds, self._client, _cycle))
        if counted:
            self.rates.append(result.rate)
            self.cycles += result.operations
            self.cpu += used
            if result.failures:
                self.failed.append(result)

    def _client(self, index: int) -> PathClient:
        return PathClient(self.url, self.authorization, self.path(index))

    @property
    def cpu_ms(self) -> float:
        """Server CPU per cycle."""
        return self.cpu * 1000 / max(self.cycles, 1)

    @property
    def failures(self) -> str:
        """A note about failed cycles, "" when there were none."""
        if not self.failed:
            return ""
        return f"{sum(r.failures for r in self.failed)} failed cycles, first: {self.failed[0].first_failure}"


def measure_cycles(server: BenchServer, threads: int, runs: int, seconds: float) -> Cycles:
    """``runs`` counted runs of ``threads`` threads for ``seconds`` each, after a warm-up run."""
    run_id = uuid.uuid4().hex[:6]
    cycles = Cycles(server.url, server.authorization, server.pids, lambda i: server.state_path(f"lock-{run_id}-{i}"))
    for number in range(runs + 1):  # run 0 warms up (creates the workspaces)
        cycles.run(threads, seconds if number else 1.0, counted=bool(number))
    return cycles


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
