"""Client overhead: what the Python load generators cost per request, measured once against nginx."""

from __future__ import annotations

import time

from bench.clients import Client, p50, run_threads
from bench.report import Row, Stat
from bench.servers import nginx, nginx_binary

RUNS = 3
REQUESTS = 300
THREADS = 8
SECONDS = 1.5


def run() -> list[Row]:
    if nginx_binary() is None:
        return [Row("client overhead per request", None, notes="skipped: nginx not installed")]
    with nginx({"tiny.json": b"{}"}) as server:
        http_client, with_requests, ceiling = [], [], []
        for _ in range(RUNS):
            http_client.append(_http_client_p50(server.url) * 1e6)
            with_requests.append(_requests_p50(server.url) * 1e6)
            ceiling.append(_threaded_rate(server.url))
    return [
        Row(
            "client: http.client keep-alive GET of a 2-byte file from nginx, 1 thread, p50",
            Stat.of(http_client, "µs"),
            notes="client + nginx round trip: an upper bound on the latency benchmarks' client overhead",
        ),
        Row(
            "client: requests.Session (keep-alive), same request, p50",
            Stat.of(with_requests, "µs"),
            notes="why the benchmarks use http.client",
        ),
        Row(
            f"client: http.client, {THREADS} threads, GETs/s from nginx",
            Stat.of(ceiling, "req/s"),
            notes=f"ceiling of the {THREADS}-thread benchmarks on this machine (a lock+unlock cycle is 2 requests)",
        ),
    ]


def _http_client_p50(url: str) -> float:
    client = Client(url)
    try:
        for _ in range(50):
            client.timed("GET", "/tiny.json")
        return p50([client.timed("GET", "/tiny.json") for _ in range(REQUESTS)])
    finally:
        client.close()


def _requests_p50(url: str) -> float:
    import requests

    with requests.Session() as session:
        samples = []
        for i in range(REQUESTS + 50):
            start = time.perf_counter()
            response = session.get(f"{url}/tiny.json", timeout=10)
            _ = response.content
            if i >= 50:
                samples.append(time.perf_counter() - start)
        return p50(samples)


def _threaded_rate(url: str) -> float:
    def get(client: object) -> None:
        assert isinstance(client, Client)
        client.timed("GET", "/tiny.json")

    result = run_threads(THREADS, SECONDS, lambda _: Client(url), get)
    return result.rate
