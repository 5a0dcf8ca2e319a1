"""State reads and writes through the http backend against nginx and a do-nothing Flask app (1 MB and 10 KB)."""

from __future__ import annotations

import contextlib
import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from bench.clients import SERIAL_BASE, Client, StateTemplate, p50, state_headers, terraform_state, wrk, wrk_binary
from bench.report import Row, Stat, Target
from bench.servers import BenchServer, cpu_seconds, nginx, nginx_binary, reference_app, statesman

MIB = 1024 * 1024
LATENCY_RUNS = 5
DOWNLOADS_PER_RUN = 100
WRITES_PER_RUN = 40
WRK_RUNS = 3
WRK_SECONDS = 5
NO_NGINX = "skipped: nginx not installed (apt-get install -y nginx)"
NO_WRK = "skipped: wrk not installed (apt-get install -y wrk)"


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
        rows = [*_download_latency(server, web, flask_app), _write_latency(server, web, big)]
        if wrk_binary() is None:
            rows += [
                Row("1 MB state download throughput, wrk -c8 / nginx", None, Target(">=", 0.35), notes=NO_WRK),
                Row("10 KB state GET throughput, wrk -c8", None, Target(">=", 1000, "value", "req/s"), notes=NO_WRK),
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


def _download_latency(server: BenchServer, web: Any, flask_app: Any) -> list[Row]:
    """p50 of 1 MB GETs from us, nginx and the do-nothing Flask app, interleaved run by run, with http.client and
    (for comparison with figures taken with it) requests.Session."""
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
        "flask": lambda: flask_client.timed("GET", "/static/state-1m.json"),
        "ours, requests": with_requests(session, server.url + path, {"Authorization": server.authorization}),
        "nginx, requests": with_requests(reference_session, f"{web.url}/state-1m.json", {}) if web else None,
    }
    results: dict[str, list[float]] = {name: [] for name, fn in targets.items() if fn is not None}
    for fn in targets.values():
        for _ in range(20 if fn is not None else 0):  # warm-up
            fn()  # type: ignore[misc]
    cpu = 0.0
    for _ in range(LATENCY_RUNS):
        for name in results:
            fn = targets[name]
            assert fn is not None
            before = cpu_seconds(server.pids()) if name == "ours" else 0.0
            results[name].append(p50([_seconds(fn) for _ in range(DOWNLOADS_PER_RUN)]) * 1000)
            if name == "ours":
                cpu += cpu_seconds(server.pids()) - before
    for closeable in (ours, nginx_client, flask_client, session, reference_session):
        if closeable is not None:
            closeable.close()
    cpu_ms = cpu * 1000 / (LATENCY_RUNS * DOWNLOADS_PER_RUN)
    flask_note = f"do-nothing Flask: {statistics.median(results['flask']):.2f} ms"
    nginx_requests = Stat.of(results["nginx, requests"], "ms") if web else None
    requests_cost = statistics.median(results["nginx, requests"]) - statistics.median(results["nginx"]) if web else 0.0
    return [
        Row(
            "1 MB state download p50 (GET, keep-alive, 1 client, http.client)",
            Stat.of(results["ours"], "ms"),
            Target("<=", 2.0),
            Stat.of(results["nginx"], "ms") if web else None,
            "nginx static file",
            notes=f"{DOWNLOADS_PER_RUN} GETs per run; server CPU {cpu_ms:.1f} ms/GET; {flask_note}",
            extra_notes=("" if web else NO_NGINX,),
        ),
        Row(
            "  same, measured with requests.Session",
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


def _write_latency(server: BenchServer, web: Any, template: StateTemplate) -> Row:
    ours, theirs = [], []
    client = Client(server.url, server.authorization)
    reference = Client(web.url) if web else None
    serials = itertools.count(SERIAL_BASE + 1)
    bodies = [template.body(SERIAL_BASE + i) for i in range(2)]
    for i in range(10):
        _write(client, server, "write-1m", template, next(serials))
        if reference:
            status, _ = reference.request("PUT", "/dav/state-1m.json", bodies[i % 2])
            if status not in (201, 204):  # 201 creates the file, 204 replaces it
                raise RuntimeError(f"nginx DAV PUT answered HTTP {status}")
    cpu = 0.0
    for _ in range(LATENCY_RUNS):
        prepared = [template.body(next(serials)) for _ in range(WRITES_PER_RUN)]
        headers = [state_headers(body) for body in prepared]
        path = server.state_path("write-1m")
        before = cpu_seconds(server.pids())
        ours.append(p50([client.timed("POST", path, b, h) for b, h in zip(prepared, headers, strict=True)]) * 1000)
        cpu += cpu_seconds(server.pids()) - before
        if reference:
            theirs.append(p50([reference.timed("PUT", "/dav/state-1m.json", b, expect=204) for b in prepared]) * 1000)
    client.close()
    if reference:
        reference.close()
    return Row(
        "1 MB state write p50 (POST + Content-MD5, 1 client)",
        Stat.of(ours, "ms"),
        Target("<=", 3.0),
        Stat.of(theirs, "ms") if theirs else None,
        "nginx DAV PUT",
        notes=(
            f"{WRITES_PER_RUN} writes per run, each a new version (serial + 1); server CPU "
            f"{cpu * 1000 / (LATENCY_RUNS * WRITES_PER_RUN):.1f} ms/write; ours fsyncs, nginx does not"
            + ("" if web else "; " + NO_NGINX)
        ),
    )


def _throughput(server: BenchServer, web: Any, flask_app: Any) -> list[Row]:
    """wrk against us, nginx and the do-nothing Flask app (1 MB), and us and Flask (10 KB), interleaved."""
    auth = {"Authorization": server.authorization}
    big_url, small_url = f"{server.url}{server.state_path('dl-1m')}", f"{server.url}{server.state_path('get-10k')}"
    ours_big, nginx_big, flask_big, ours_small, flask_small = [], [], [], [], []
    problems: list[str] = []
    cpu: dict[str, list[float]] = {}

    def measure(label: str, url: str, pids: list[int], headers: dict[str, str] | None = None) -> float:
        before = cpu_seconds(pids)
        result = wrk(url, WRK_SECONDS, headers=headers)
        cpu.setdefault(label, []).append((cpu_seconds(pids) - before) * 1000 / max(result.requests, 1))
        if result.non_2xx or result.socket_errors:
            problems.append(f"{url.rsplit('/', 1)[-1]}: {result.non_2xx} non-2xx, errors: {result.socket_errors}")
        return result.requests_per_second

    for _ in range(WRK_RUNS):
        ours_big.append(measure("ours 1m", big_url, server.pids(), auth))
        if web:
            nginx_big.append(measure("nginx 1m", f"{web.url}/state-1m.json", web.pids()))
        flask_big.append(measure("flask 1m", f"{flask_app.url}/static/state-1m.json", flask_app.pids()))
        ours_small.append(measure("ours 10k", small_url, server.pids(), auth))
        flask_small.append(measure("flask 10k", f"{flask_app.url}/static/state-10k.json", flask_app.pids()))

    def cpu_note(*labels: str) -> str:
        return "server CPU/request: " + ", ".join(
            f"{label.split()[0]} {statistics.median(cpu[label]):.2f} ms" for label in labels if label in cpu
        )

    nginx_stat = Stat.of(nginx_big, "req/s") if nginx_big else None
    wrk_note = f"wrk -c8 -t2 -d{WRK_SECONDS}s"
    problem_note = ("wrk saw failures: " + "; ".join(problems[:3])) if problems else ""
    return [
        Row(
            "1 MB state download throughput (wrk -c8)",
            Stat.of(ours_big, "req/s"),
            Target(">=", 0.35),
            nginx_stat,
            "nginx static file",
            notes=wrk_note + ("" if web else "; " + NO_NGINX),
            extra_notes=(cpu_note("ours 1m", "flask 1m", "nginx 1m"), problem_note),
        ),
        Row(
            "  do-nothing Flask handler, same 1 MB (wrk -c8)",
            Stat.of(flask_big, "req/s"),
            None,
            nginx_stat,
            "nginx static file",
            notes="the floor of Flask + gunicorn (spec: 0.46 of nginx)" if web else NO_NGINX,
        ),
        Row(
            "10 KB state GET throughput (wrk -c8)",
            Stat.of(ours_small, "req/s"),
            Target(">=", 1000, "value", "req/s"),
            Stat.of(flask_small, "req/s"),
            "do-nothing Flask",
            notes=wrk_note + "; Basic auth with an API token",
            extra_notes=(cpu_note("ours 10k", "flask 10k"),),
        ),
    ]
