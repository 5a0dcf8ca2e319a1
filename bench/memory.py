"""Server memory while writing (and reading) a 50 MB state: peak RSS growth of the gunicorn workers above idle.

"Idle" is each worker's resident size after a warm-up with small states. Each run resets the workers' peak-RSS
counters (``/proc/<pid>/clear_refs``), sends the request and reads ``VmHWM``; the growth of the worker that served it
(the largest) is the result. Memory a worker keeps after a request (allocator arenas) is not counted twice: the peak
of a later run is still measured against the same idle size.
"""

from __future__ import annotations

import statistics

from bench.clients import SERIAL_BASE, Client, state_headers, terraform_state
from bench.report import Row, Stat, Target
from bench.servers import BenchServer, statesman

MIB = 1024 * 1024
STATE_SIZE = 50 * MIB
RUNS = 3
WORKERS = 2


def run() -> list[Row]:
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
