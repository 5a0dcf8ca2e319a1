"""State reads and writes through the http backend against nginx and a do-nothing Flask app (1 MB and 10 KB), with
the server CPU per request of each."""

from __future__ import annotations

import contextlib
import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

from bench.clients import SERIAL_BASE, Client, StateTemplate, state_headers, terraform_state, wrk, wrk_binary
from bench.report import Row, Stat, Target, cpu_note
from bench.servers import (
    BenchServer,
    ReferenceApp,
    cpu_while,
    nginx,
    nginx_binary,
    p50_and_cpu,
    reference_app,
    statesman,
)

MIB = 1024 * 1024
LATENCY_RUNS = 5
DOWNLOADS_PER_RUN = 100
WRITES_PER_RUN = 40
WRK_RUNS = 3
WRK_SECONDS = 5
NO_NGINX = "skipped: nginx not installed (apt-get install -y nginx)"
NO_WRK = "skipped: wrk not installed (apt-get install -y wrk)"
FLASK = "do-nothing Flask"
CPU_SOURCE = "user + system time of the gunicorn master and workers (/proc) over the runs above"


def run() -> list[Row]:
    big = terraform_state(MIB)
    small = terraform_state(10 * 1024)
    files = {"state-1m.json": big.body(SERIAL_BASE), "state-10k.json": small.body(SERIAL_BASE)}
    with (
        statesman("transfer") as server,
        _optional(nginx(files) if nginx_binary() else None) as web,
        reference_app(files) as flask_app,
    ):
        client = Client(server.url, server.authorization)
        _write(client, server, "dl-1m", big, SERIAL_BASE)
        _write(client, server, "get-10k", small, SERIAL_BASE)
        status, stored = client.request("GET", server.state_path("dl-1m"))
        client.close()
        if status != 200 or stored != files["state-1m.json"]:
            raise RuntimeError(f"the server did not return the bytes written (HTTP {status}, {len(stored)} bytes)")
        rows = [*_download_latency(server, web, flask_app), *_write_latency(server, web, flask_app, big)]
        if wrk_binary() is None:
            rows += [
                Row("1 MB state download throughput (wrk -c8)", None, Target(">=", 0.35), notes=NO_WRK),
                Row("10 KB state GET throughput (wrk -c8)", None, Target(">=", 1000, "value", "req/s"), notes=NO_WRK),
                Row("  same 10 KB GET throughput / do-nothing Flask", None, Target(">=", 0.5), notes=NO_WRK),
            ]
        else:
            rows += _throughput(server, web, flask_app)
    return rows


@contextlib.contextmanager
def _optional(manager: AbstractContextManager[Any] | None) -> Iterator[Any]:
    if manager is None:
        yield None
    else:
        with manager as value:
            yield value


def _write(client: Client, server: BenchServer, workspace: str, template: StateTemplate, serial: int) -> float:
    body = template.body(serial)
    return client.timed("POST", server.state_path(workspace), body, state_headers(body))


def _download_latency(server: BenchServer, web: Any, flask_app: ReferenceApp) -> list[Row]:
    """p50 of 1 MB GETs from us, nginx and the do-nothing Flask app, interleaved run by run, with http.client and
    (for comparison with figures taken with it) requests.Session; the server CPU per GET of the first three."""
    import requests

    path = server.state_path("dl-1m")
    session = requests.Session()
    reference_session = requests.Session()

    def with_requests(s: requests.Session, url: str, headers: dict[str, str]) -> Callable[[], None]:
        def get() -> None:
            response = s.get(url, headers=headers, timeout=60)
            if response.status_code != 200 or len(response.content) < MIB // 2:
                raise RuntimeError(f"GET {url}: HTTP {response.status_code}, {len(response.content)} bytes")

        return get

    ours, nginx_client, flask_client = (
        Client(server.url, server.authorization),
        Client(web.url) if web else None,
        Client(flask_app.url),
    )
    targets: dict[str, Callable[[], object] | None] = {
        "ours": lambda: ours.timed("GET", path),
        "nginx": (lambda: nginx_client.timed("GET", "/state-1m.json")) if nginx_client else None,
        FLASK: lambda: flask_client.timed("GET", "/static/state-1m.json"),
        "ours, requests": with_requests(session, server.url + path, {"Authorization": server.authorization}),
        "nginx, requests": with_requests(reference_session, f"{web.url}/state-1m.json", {}) if web else None,
    }
    processes = {"ours": server.pids, "nginx": web.pids if web else list, FLASK: flask_app.pids}
    results: dict[str, list[float]] = {name: [] for name, fn in targets.items() if fn is not None}
    cpu: dict[str, list[float]] = {name: [] for name in processes if name in results}
    for fn in targets.values():
        for _ in range(20 if fn is not None else 0):  # warm-up
            fn()  # type: ignore[misc]
    for _ in range(LATENCY_RUNS):
        for name in results:
            fn = targets[name]
            assert fn is not None
            latency, used = p50_and_cpu(processes[name]() if name in processes else [], [fn] * DOWNLOADS_PER_RUN)
            results[name].append(latency)
            if name in cpu:
                cpu[name].append(used)
    for closeable in (ours, nginx_client, flask_client, session, reference_session):
        if closeable is not None:
            closeable.close()
    nginx_requests = Stat.of(results["nginx, requests"], "ms") if web else None
    requests_cost = statistics.median(results["nginx, requests"]) - statistics.median(results["nginx"]) if web else 0.0
    return [
        Row(
            "1 MB state download p50 (GET, keep-alive, 1 client, http.client)",
            Stat.of(results["ours"], "ms"),
            Target("<=", 2.0),
            Stat.of(results["nginx"], "ms") if web else None,
            "nginx static file",
            notes=f"{DOWNLOADS_PER_RUN} GETs per run; {cpu_note(cpu, 'GET')}",
            extra_notes=("" if web else NO_NGINX,),
            flask=Stat.of(results[FLASK], "ms"),
        ),
        _cpu_row("  server CPU per 1 MB GET", cpu, 1.5, CPU_SOURCE),
        Row(
            "  same download p50, measured with requests.Session",
            Stat.of(results["ours, requests"], "ms"),
            None,
            nginx_requests,
            "nginx static file",
            notes=(
                f"no target; requests adds {requests_cost:.1f} ms to each side (nginx: requests - http.client), "
                "which flatters the ratio"
                if web
                else ""
            ),
            extra_notes=("" if web else NO_NGINX,),
        ),
    ]


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _write_latency(server: BenchServer, web: Any, flask_app: ReferenceApp, template: StateTemplate) -> list[Row]:
    """p50 of 1 MB state writes (each a new serial) against nginx DAV PUTs and do-nothing Flask POSTs of the same
    bytes, interleaved run by run; the server CPU per write."""
    ours, theirs, floor = [], [], []
    cpu: dict[str, list[float]] = {"ours": [], "nginx": [], FLASK: []}
    client = Client(server.url, server.authorization)
    reference = Client(web.url) if web else None
    flask_client = Client(flask_app.url)
    serials = itertools.count(SERIAL_BASE + 1)
    bodies = [template.body(SERIAL_BASE + i) for i in range(2)]
    for i in range(10):
        _write(client, server, "write-1m", template, next(serials))
        flask_client.timed("POST", "/sink/state-1m.json", bodies[i % 2], state_headers(bodies[i % 2]))
        if reference:
            status, _ = reference.request("PUT", "/dav/state-1m.json", bodies[i % 2])
            if status not in (201, 204):  # 201 creates the file, 204 replaces it
                raise RuntimeError(f"nginx DAV PUT answered HTTP {status}")
    path = server.state_path("write-1m")
    for _ in range(LATENCY_RUNS):
        prepared = [template.body(next(serials)) for _ in range(WRITES_PER_RUN)]
        writes = [(body, state_headers(body)) for body in prepared]
        latency, used = p50_and_cpu(server.pids(), [partial(client.timed, "POST", path, b, h) for b, h in writes])
        ours.append(latency)
        cpu["ours"].append(used)
        sink = [partial(flask_client.timed, "POST", "/sink/state-1m.json", b, h) for b, h in writes]
        latency, used = p50_and_cpu(flask_app.pids(), sink)
        floor.append(latency)
        cpu[FLASK].append(used)
        if reference:
            puts = [partial(reference.timed, "PUT", "/dav/state-1m.json", b, expect=204) for b in prepared]
            latency, used = p50_and_cpu(web.pids(), puts)
            theirs.append(latency)
            cpu["nginx"].append(used)
    for closeable in (client, reference, flask_client):
        if closeable is not None:
            closeable.close()
    return [
        Row(
            "1 MB state write p50 (POST + Content-MD5, 1 client)",
            Stat.of(ours, "ms"),
            Target("<=", 3.0),
            Stat.of(theirs, "ms") if theirs else None,
            "nginx DAV PUT",
            notes=(
                f"{WRITES_PER_RUN} writes per run, each a new version (serial + 1); {cpu_note(cpu, 'write')}; "
                "ours fsyncs, nginx does not" + ("" if web else "; " + NO_NGINX)
            ),
            flask=Stat.of(floor, "ms"),
        ),
        _cpu_row(
            "  server CPU per 1 MB write",
            cpu,
            8.0,
            CPU_SOURCE + "; the do-nothing Flask handler reads the body and keeps nothing",
        ),
    ]


def _throughput(server: BenchServer, web: Any, flask_app: ReferenceApp) -> list[Row]:
    """wrk against us, nginx and the do-nothing Flask app (1 MB), and us and Flask (10 KB), interleaved."""
    auth = {"Authorization": server.authorization}
    big_url, small_url = f"{server.url}{server.state_path('dl-1m')}", f"{server.url}{server.state_path('get-10k')}"
    rates: dict[str, list[float]] = {}
    cpu: dict[str, dict[str, list[float]]] = {"1m": {}, "10k": {}}
    problems: list[str] = []

    def measure(size: str, name: str, url: str, pids: list[int], headers: dict[str, str] | None = None) -> None:
        result, used = cpu_while(pids, lambda: wrk(url, WRK_SECONDS, headers=headers))
        rates.setdefault(f"{name} {size}", []).append(result.requests_per_second)
        cpu[size].setdefault(name, []).append(used * 1000 / max(result.requests, 1))
        if result.non_2xx or result.socket_errors:
            problems.append(f"{url.rsplit('/', 1)[-1]}: {result.non_2xx} non-2xx, errors: {result.socket_errors}")

    for _ in range(WRK_RUNS):
        measure("1m", "ours", big_url, server.pids(), auth)
        if web:
            measure("1m", "nginx", f"{web.url}/state-1m.json", web.pids())
        measure("1m", FLASK, f"{flask_app.url}/static/state-1m.json", flask_app.pids())
        measure("10k", "ours", small_url, server.pids(), auth)
        measure("10k", FLASK, f"{flask_app.url}/static/state-10k.json", flask_app.pids())

    nginx_stat = Stat.of(rates["nginx 1m"], "req/s") if web else None
    flask_big, flask_small = Stat.of(rates[f"{FLASK} 1m"], "req/s"), Stat.of(rates[f"{FLASK} 10k"], "req/s")
    ours_small = Stat.of(rates["ours 10k"], "req/s")
    wrk_note = f"wrk -c8 -t2 -d{WRK_SECONDS}s"
    flask_share = f"do-nothing Flask / nginx {flask_big.median / nginx_stat.median:.2f}" if nginx_stat else NO_NGINX
    problem_note = ("wrk saw failures: " + "; ".join(problems[:3])) if problems else ""
    return [
        Row(
            "1 MB state download throughput (wrk -c8)",
            Stat.of(rates["ours 1m"], "req/s"),
            Target(">=", 0.35),
            nginx_stat,
            "nginx static file",
            notes=f"{wrk_note}; {flask_share}",
            extra_notes=(cpu_note(cpu["1m"], "request"), problem_note),
            flask=flask_big,
        ),
        Row(
            "10 KB state GET throughput (wrk -c8)",
            ours_small,
            Target(">=", 1000, "value", "req/s"),
            flask_small,
            FLASK,
            notes=wrk_note + "; Basic auth with an API token",
            extra_notes=(cpu_note(cpu["10k"], "request"),),
            flask=flask_small,
        ),
        Row(
            "  same 10 KB GET throughput / do-nothing Flask",
            ours_small,
            Target(">=", 0.5),
            flask_small,
            FLASK,
            notes="the second target of the same measurement",
            flask=flask_small,
        ),
    ]


def _cpu_row(metric: str, cpu: dict[str, list[float]], limit_ms: float, notes: str) -> Row:
    """The sub-row of our server CPU per request (target ``limit_ms``) beside the do-nothing Flask handler's."""
    flask_cpu = Stat.of(cpu[FLASK], "ms")
    return Row(
        metric,
        Stat.of(cpu["ours"], "ms"),
        Target("<=", limit_ms, "value", "ms"),
        flask_cpu,
        FLASK,
        notes=notes,
        flask=flask_cpu,
    )
