"""Server memory: the whole server's idle and peak size with the default settings, and the growth while writing
(and reading) a 50 MB state.

Idle and peak: a server with the default worker count is warmed up with a mixed load on every worker (1 MB state
writes and reads, 10 KB GETs, lock + unlock, TFC GET workspace); idle is the resident size of the master and every
worker a moment after a load, peak the sum of each process's ``VmHWM`` during the next load (counters reset through
``/proc/<pid>/clear_refs``). Workers share the pages of the master after fork, so the notes add PSS (shared pages
split between their users) and USS (pages of one process alone) from ``/proc/<pid>/smaps_rollup``.

The 50 MB state: "idle" is each worker's resident size after a warm-up with small states. Each run resets the
workers' peak-RSS counters, sends the request and reads ``VmHWM``; the growth of the worker that served it (the
largest) is the result. Memory a worker keeps after a request (allocator arenas) is not counted twice: the peak of a
later run is still measured against the same idle size.
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass, field

from bench.clients import (
    SERIAL_BASE,
    Client,
    StateTemplate,
    lock_info,
    run_threads,
    state_headers,
    terraform_state,
)
from bench.report import Row, Stat, Target
from bench.servers import ORG, BenchServer, cpu_seconds, statesman

MIB = 1024 * 1024
STATE_SIZE = 50 * MIB
RUNS = 3
WORKERS = 2
LOAD_THREADS = 8
LOAD_SECONDS = 4.0
SETTLE_SECONDS = 1.0
WARM_UP_ROUNDS = 6
WARM_UP_CPU = 0.3  # seconds of CPU each worker must have spent before it counts as warmed up
WORKER_LIMIT_MIB = 60
SERVER_LIMIT_MIB = 270  # twice a single-process Python TFE-compatible peer's 135 MB
API = "/api/v2"


def run() -> list[Row]:
    return server_size_rows() + large_state_rows()


def large_state_rows() -> list[Row]:
    template = terraform_state(STATE_SIZE)
    size_mb = template.size / MIB
    with statesman("memory", workers=WORKERS) as server:
        if not _can_reset_peaks(server):
            return [
                Row(
                    "server memory growth while writing a 50 MiB state",
                    None,
                    Target("<=", 2.0),
                    notes="cannot reset VmHWM through /proc/<pid>/clear_refs on this system",
                )
            ]
        _warm_up(server)
        idle = {pid: _status(pid)["VmRSS"] for pid in server.worker_pids()}
        client = Client(server.url, server.authorization, timeout=300)
        writes, reads, write_seconds, read_seconds = [], [], [], []
        for run_no in range(RUNS):
            body = template.body(SERIAL_BASE + 1 + run_no)
            growth, seconds = _peak_growth(server, idle, client, "POST", body)
            writes.append(growth / MIB)
            write_seconds.append(seconds)
            growth, seconds = _peak_growth(server, idle, client, "GET")
            reads.append(growth / MIB)
            read_seconds.append(seconds)
        client.close()
    size = Stat.of([size_mb] * RUNS, "MiB")
    idle_note = f"idle worker RSS {max(idle.values()) / MIB:.0f} MB; {WORKERS} workers, the largest growth counts"
    return [
        Row(
            f"server memory growth while writing a {size_mb:.0f} MiB state (peak RSS - idle)",
            Stat.of(writes, "MiB"),
            Target("<=", 2.0),
            size,
            "state size",
            notes=f"{idle_note}; write took {statistics.median(write_seconds):.1f} s",
        ),
        Row(
            f"server memory growth while reading a {size_mb:.0f} MiB state (peak RSS - idle)",
            Stat.of(reads, "MiB"),
            None,
            size,
            "state size",
            notes=f"no target; read took {statistics.median(read_seconds):.1f} s",
        ),
    ]


def _warm_up(server: BenchServer) -> None:
    """Load every lazily imported module in each worker with small writes and reads on several connections."""
    small = terraform_state(MIB)
    clients = [Client(server.url, server.authorization) for _ in range(2 * WORKERS)]
    for i, client in enumerate(clients):
        body = small.body(SERIAL_BASE + i)
        client.timed("POST", server.state_path("warm"), body, state_headers(body))
        client.timed("GET", server.state_path("warm"))
    for client in clients:
        client.close()


def _status(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
    return values


def _can_reset_peaks(server: BenchServer) -> bool:
    try:
        for pid in server.worker_pids():
            with open(f"/proc/{pid}/clear_refs", "w") as clear:
                clear.write("5")
        return True
    except OSError:
        return False


def _peak_growth(
    server: BenchServer, idle: dict[int, int], client: Client, method: str, body: bytes | None = None
) -> tuple[int, float]:
    """(largest VmHWM - idle RSS among the workers, seconds the request took) for one request."""
    for pid in idle:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")  # VmHWM := VmRSS
    seconds = client.timed(method, server.state_path("big"), body, state_headers(body) if body else None)
    if sorted(idle) != server.worker_pids():
        raise RuntimeError("a gunicorn worker was replaced during the measurement (killed for memory or timeout?)")
    return max(_status(pid)["VmHWM"] - rss for pid, rss in idle.items()), seconds


# --- the whole server, idle and under load ----------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """One process's memory: resident, proportional (shared pages split) and unique (private) bytes."""

    rss: int
    pss: int | None = None
    uss: int | None = None


def process_size(pid: int) -> Size:
    """From ``/proc/<pid>/smaps_rollup`` when readable, else RSS alone from ``/proc/<pid>/status``."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            fields = {
                name: int(rest.split()[0]) * 1024
                for name, _, rest in (line.partition(":") for line in rollup)
                if rest.strip().endswith("kB")
            }
        uss = fields["Private_Clean"] + fields["Private_Dirty"]
        return Size(fields["Rss"], fields["Pss"], uss)
    except (OSError, KeyError):
        return Size(_status(pid)["VmRSS"])


class MixedClient(Client):
    """One load thread's connection: its own workspace on the http backend, and the TFC API's token header."""

    def __init__(self, server: BenchServer, index: int) -> None:
        super().__init__(server.url, server.authorization)
        self.workspace = server.state_path(f"mixed-{index}")
        self.bearer = f"Bearer {server.token}"


@dataclass
class MixedLoad:
    """What the benchmarks send, from ``LOAD_THREADS`` threads: a 1 MB write and read, a 10 KB GET, a lock and
    unlock, and a TFC GET workspace per cycle."""

    server: BenchServer
    big: StateTemplate
    small_path: str
    workspace_path: str
    # one counter for every thread and run, so the serials a workspace sees keep rising from one run to the next
    serials: itertools.count[int] = field(default_factory=lambda: itertools.count(SERIAL_BASE + 1))

    @classmethod
    def prepare(cls, server: BenchServer) -> MixedLoad:
        client = Client(server.url, server.authorization)
        small = terraform_state(10 * 1024).body(SERIAL_BASE)
        client.timed("POST", server.state_path("mixed-10k"), small, state_headers(small))
        client.close()
        workspace_path = f"{API}/organizations/{ORG}/workspaces/mixed-10k"
        return cls(server, terraform_state(1024 * 1024), server.state_path("mixed-10k"), workspace_path)

    def client(self, index: int) -> MixedClient:
        return MixedClient(self.server, index)

    def cycle(self, state: object) -> None:
        assert isinstance(state, MixedClient)
        body = self.big.body(next(self.serials))
        state.timed("POST", state.workspace, body, state_headers(body))
        state.timed("GET", state.workspace)
        state.timed("GET", self.small_path)
        lock = lock_info()
        state.timed("LOCK", state.workspace, lock, {"Content-Type": "application/json"})
        state.timed("UNLOCK", state.workspace, lock, {"Content-Type": "application/json"})
        state.timed("GET", self.workspace_path, headers={"Authorization": state.bearer})

    def run(self, seconds: float) -> int:
        """Cycles completed; raises on the first failure (a memory figure of a failing load means nothing)."""
        result = run_threads(LOAD_THREADS, seconds, self.client, self.cycle)
        if result.failures:
            raise RuntimeError(f"mixed load: {result.failures} failed cycles, first: {result.first_failure}")
        return result.operations


def warm_up(server: BenchServer, load: MixedLoad) -> str:
    """Load until every worker has spent ``WARM_UP_CPU`` (new connections each round reach other workers); a note
    when some never did."""
    start = {pid: cpu_seconds([pid]) for pid in server.worker_pids()}
    cold = list(start)
    for _ in range(WARM_UP_ROUNDS):
        load.run(2.0)
        cold = [pid for pid, spent in start.items() if cpu_seconds([pid]) - spent < WARM_UP_CPU]
        if not cold:
            return ""
    return f"{len(cold)} of {len(start)} workers did not serve the warm-up"


def server_size_rows() -> list[Row]:
    """Idle size (whole server and the largest worker) and peak size under the mixed load, ``RUNS`` rounds."""
    with statesman("memory-size") as server:
        load = MixedLoad.prepare(server)
        warm_note = warm_up(server, load)
        idle: list[dict[int, Size]] = []
        peaks: list[int] = []
        for _ in range(RUNS):
            time.sleep(SETTLE_SECONDS)  # let the threads of the last load finish their responses
            pids = server.pids()
            idle.append({pid: process_size(pid) for pid in pids})
            reset = _reset_peaks(pids)
            load.run(LOAD_SECONDS)
            if server.pids() != pids:
                raise RuntimeError("a gunicorn process was replaced during the load (killed for memory or timeout?)")
            peaks.append(sum(_status(pid)["VmHWM"] for pid in pids))
        master = server.live.process.pid if server.live.process else 0
    peak_note = "" if reset else "clear_refs not writable: each VmHWM is the peak since the process started"
    return _size_rows(idle, peaks, master, (warm_note, peak_note))


def _size_rows(idle: list[dict[int, Size]], peaks: list[int], master: int, warnings: tuple[str, str]) -> list[Row]:
    workers = [pid for pid in idle[0] if pid != master]
    whole = Stat.of([sum(s.rss for s in sizes.values()) / MIB for sizes in idle], "MiB")
    largest = Stat.of([max(sizes[pid].rss for pid in workers) / MIB for sizes in idle], "MiB")
    last = idle[-1]
    shared_note = "smaps_rollup not readable: no PSS or USS"
    if all(s.pss is not None and s.uss is not None for s in last.values()):
        pss = sum(s.pss or 0 for s in last.values()) / MIB
        worst = max(workers, key=lambda pid: last[pid].rss)
        shared_note = (
            f"PSS of the whole server {pss:.0f} MiB; largest worker PSS {(last[worst].pss or 0) / MIB:.0f} MiB, "
            f"USS {(last[worst].uss or 0) / MIB:.0f} MiB (last round)"
        )
    median_worker = statistics.median(last[pid].rss for pid in workers) / MIB
    return [
        Row(
            f"server memory, idle, default settings (RSS of master + {len(workers)} workers)",
            whole,
            Target("<=", SERVER_LIMIT_MIB, "value", "MiB"),
            notes=f"after a warm-up of every worker with the mixed load; master {last[master].rss / MIB:.0f} MiB; "
            f"the limit is twice a 135 MB single-process peer; {shared_note}",
            extra_notes=(warnings[0],),
        ),
        Row(
            "  server memory, idle: largest worker's RSS",
            largest,
            Target("<=", WORKER_LIMIT_MIB, "value", "MiB"),
            notes=f"median worker {median_worker:.0f} MiB (last round)",
        ),
        Row(
            "  server memory, peak during the mixed load (sum of each process's VmHWM)",
            Stat.of([p / MIB for p in peaks], "MiB"),
            notes=f"{LOAD_SECONDS:.0f} s of {LOAD_THREADS} threads, each cycle a 1 MB write and read, a 10 KB GET, "
            "lock + unlock and a TFC GET workspace; no target",
            extra_notes=(warnings[1],),
        ),
    ]


def _reset_peaks(pids: list[int]) -> bool:
    """Set each process's VmHWM to its VmRSS; False when the system does not allow it."""
    try:
        for pid in pids:
            with open(f"/proc/{pid}/clear_refs", "w") as clear:
                clear.write("5")
    except OSError:
        return False
    return True
