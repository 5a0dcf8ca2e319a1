"""``python -m bench.workers [WxT ...]``: the default server's throughput at several gunicorn worker and thread counts.

For each ``workers x threads`` (default: 5x4 5x2 3x4 3x2 2x8) it starts Statesman with ``WEB_CONCURRENCY`` workers and
``GUNICORN_CMD_ARGS=--threads T``, then measures a 10 KB state GET with ``wrk -c8`` and lock + unlock cycles from 8
client threads, three runs each, and prints one Markdown row per setting: the numbers behind the worker and thread
counts the README recommends. Not a benchmark module (no ``run()``): it starts one server per setting.
"""

from __future__ import annotations

import statistics
import sys

from bench.clients import SERIAL_BASE, Client, state_headers, terraform_state, wrk
from bench.locks import measure_cycles
from bench.servers import BenchServer, cpu_seconds, statesman

DEFAULT_SETTINGS = ("5x4", "5x2", "3x4", "3x2", "2x8")
RUNS = 3


def parse(setting: str) -> tuple[int, int]:
    workers, _, threads = setting.partition("x")
    if not (workers.isdigit() and threads.isdigit()):
        raise SystemExit(f"expected WORKERSxTHREADS such as 5x4, got {setting!r}")
    return int(workers), int(threads)


def state_gets(server: BenchServer) -> tuple[float, float]:
    """Median requests/s of a 10 KB state GET under ``wrk -c8``, and the server CPU per request (ms)."""
    body = terraform_state(10 * 1024).body(SERIAL_BASE)
    client = Client(server.url, server.authorization)
    client.timed("POST", server.state_path("gets"), body, state_headers(body))
    client.close()
    url, headers = f"{server.url}{server.state_path('gets')}", {"Authorization": server.authorization}
    wrk(url, 2, headers=headers)  # warm every worker up
    rates, cpu = [], []
    for _ in range(RUNS):
        before = cpu_seconds(server.pids())
        result = wrk(url, 4, headers=headers)
        cpu.append((cpu_seconds(server.pids()) - before) * 1000 / max(result.requests, 1))
        rates.append(result.requests_per_second)
    return statistics.median(rates), statistics.median(cpu)


def main(argv: list[str]) -> int:
    print("| workers x threads | 10 KB GET, wrk -c8 | CPU per GET | lock + unlock, 8 threads | CPU per cycle |")
    print("|---|---|---|---|---|")
    for setting in argv or DEFAULT_SETTINGS:
        workers, threads = parse(setting)
        env = {"GUNICORN_CMD_ARGS": f"--threads {threads}"}
        with statesman(f"workers-{setting}", workers=workers, env=env) as server:
            rate, cpu = state_gets(server)
            cycles = measure_cycles(server, 8, RUNS, 3.0)
            print(
                f"| {workers} x {threads} | {rate:,.0f} req/s | {cpu:.2f} ms | "
                f"{statistics.median(cycles.rates):,.0f} cycles/s | {cycles.cpu_ms:.1f} ms |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
