"""TFC API: workspace listing with 10,000 workspaces in one organization, GET workspace at 1 and 8 clients (beside a
do-nothing Flask handler returning the same document), and 1 MB state version create + download at concurrency 1
and 8, against a live gunicorn server (``python -m bench tfc_api``)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from bench.clients import Client, StateTemplate, p50, run_threads, terraform_state
from bench.report import Row, Stat, Target, cpu_note, render_table
from bench.servers import ORG, BenchServer, ReferenceApp, cpu_while, reference_app, statesman
from tests.live_server import REPO_ROOT

WORKSPACES = 10_000
LIST_SAMPLES = 200
RUNS = 3
STATE_SIZE = 1024 * 1024
CYCLES_PER_THREAD = 12
WARM_UP = 5
CLIENTS = 8
CONCURRENT_SECONDS = 3.0
API = "/api/v2"
JSONAPI = {"Content-Type": "application/vnd.api+json"}
WORKSPACE_PATH = f"{API}/organizations/{ORG}/workspaces/app-00042"
FLASK = "do-nothing Flask"
FLASK_DOCUMENT = "/json/workspace.json"

# Bulk-inserts the workspaces through the models in one process (10,000 API calls would dominate the run time).
_POPULATE = """
import sys
from app import create_app
from app.extensions import db
from app.models import Workspace
from app.core.ids import new_id
from app.repositories.orgs import get_org
app = create_app()
with app.app_context():
    org = get_org(sys.argv[1])
    half = int(sys.argv[2]) // 2
    names = [f"app-{i:05d}" for i in range(half)] + [f"svc-{i:05d}" for i in range(half)]
    db.session.add_all(Workspace(id=new_id("ws"), org_id=org.id, name=name, created_by="bench") for name in names)
    db.session.commit()
"""


def run() -> list[Row]:
    with statesman("tfc-api") as server:
        populate(server)
        client = Client(server.url, f"Bearer {server.token}")
        try:
            rows = list_rows(client)
            status, document = client.request("GET", WORKSPACE_PATH)
            if status != 200:
                raise RuntimeError(f"GET {WORKSPACE_PATH}: HTTP {status}: {document[:300]!r}")
            # the do-nothing handler encodes a document of the same shape and size: our own
            with reference_app({"workspace.json": document}) as flask_app:
                rows += get_workspace_rows(server, client, flask_app, len(document))
        finally:
            client.close()
        template = terraform_state(STATE_SIZE)
        rows += state_rows(server, template, 1) + state_rows(server, template, 8)
    return rows


def populate(server: BenchServer) -> None:
    """``WORKSPACES`` workspaces in the bench organization: half ``app-*``, half ``svc-*``."""
    result = subprocess.run(
        [sys.executable, "-c", _POPULATE, ORG, str(WORKSPACES)],
        env=server.live.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"populating workspaces failed: {(result.stdout + result.stderr)[-2000:]}")


def latencies(client: Client, path: str, samples: int) -> list[float]:
    """Milliseconds per request (after ``WARM_UP`` requests)."""
    for _ in range(WARM_UP):
        client.timed("GET", path)
    return [client.timed("GET", path) * 1000 for _ in range(samples)]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def list_rows(client: Client) -> list[Row]:
    """p50 (target) and p95 (info) of three listings, each measured in ``RUNS`` runs."""
    cases = [
        (
            "page of 20",
            f"{API}/organizations/{ORG}/workspaces?page[size]=20&page[number]=7",
            Target("<=", 5, "value", "ms"),
        ),
        ("page of 100", f"{API}/organizations/{ORG}/workspaces?page[size]=100&page[number]=7", None),
        (
            "search[name]=app- (5,000 match), page of 20",
            f"{API}/organizations/{ORG}/workspaces?search[name]=app-",
            Target("<=", 20, "value", "ms"),
        ),
    ]
    rows = []
    for label, path, target in cases:
        runs = [latencies(client, path, LIST_SAMPLES) for _ in range(RUNS)]
        metric = f"list workspaces ({WORKSPACES:,} in org), {label}"
        rows.append(
            Row(
                f"{metric}: p50",
                Stat.of([p50(r) for r in runs], "ms"),
                target,
                notes=f"{LIST_SAMPLES} sequential requests per run, 1 client; SQLite metadata",
            )
        )
        rows.append(Row(f"{metric}: p95", Stat.of([percentile(r, 0.95) for r in runs], "ms")))
    return rows


def get_workspace_rows(server: BenchServer, client: Client, flask_app: ReferenceApp, size: int) -> list[Row]:
    """GET workspace p50 with 1 client (the target: a multiple of the do-nothing Flask GET of the same document),
    then p50 and requests/s with ``CLIENTS`` threads; ours and the reference run by run."""
    floor = Client(flask_app.url)
    single: dict[str, list[float]] = {"ours": [], FLASK: []}
    cpu: dict[str, list[float]] = {"ours": [], FLASK: []}
    latencies(floor, FLASK_DOCUMENT, LIST_SAMPLES)  # its first requests import and build what Flask needs lazily
    for _ in range(RUNS):
        for name, side, path, pids in (
            ("ours", client, WORKSPACE_PATH, server.pids),
            (FLASK, floor, FLASK_DOCUMENT, flask_app.pids),
        ):
            samples, used = cpu_while(pids(), partial(latencies, side, path, LIST_SAMPLES))
            single[name].append(p50(samples))
            cpu[name].append(used * 1000 / (LIST_SAMPLES + WARM_UP))
    _, reference_document = floor.request("GET", FLASK_DOCUMENT)
    floor.close()
    ours = Concurrent(server.url, f"Bearer {server.token}", WORKSPACE_PATH, server.pids)
    theirs = Concurrent(flask_app.url, None, FLASK_DOCUMENT, flask_app.pids)
    for number in range(RUNS + 1):  # run 0 warms up every worker
        for load in (ours, theirs):
            load.run(CLIENTS, CONCURRENT_SECONDS if number else 1.0, counted=bool(number))
    flask_single = Stat.of(single[FLASK], "ms")
    sizes = f"document {size:,} bytes (do-nothing Flask: {len(reference_document):,})"
    return [
        Row(
            "GET workspace (TFC API) p50, 1 client",
            Stat.of(single["ours"], "ms"),
            Target("<=", 2.5),
            flask_single,
            FLASK,
            notes=f"{LIST_SAMPLES} sequential requests per run; {sizes}; {cpu_note(cpu, 'request')}",
            flask=flask_single,
        ),
        *ours.rows(theirs),
    ]


@dataclass
class Concurrent:
    """``GET path`` from many client threads for a fixed time: each counted run's p50, requests/s and CPU."""

    url: str
    authorization: str | None
    path: str
    pids: Callable[[], list[int]]
    p50s: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    failures: int = 0

    def run(self, threads: int, seconds: float, counted: bool = True) -> None:
        samples: list[float] = []

        def get(client: object) -> None:
            assert isinstance(client, Client)
            samples.append(client.timed("GET", self.path) * 1000)

        def connect(_: int) -> Client:
            return Client(self.url, self.authorization)

        result, used = cpu_while(self.pids(), lambda: run_threads(threads, seconds, connect, get))
        if counted:
            self.p50s.append(p50(samples))
            self.rates.append(result.rate)
            self.cpu_ms.append(used * 1000 / max(result.operations, 1))
            self.failures += result.failures

    def rows(self, floor: Concurrent) -> list[Row]:
        """Our p50 and requests/s rows, each against ``floor`` (the do-nothing Flask side)."""
        label = f"GET workspace (TFC API), {CLIENTS} client threads"
        cpu = {"ours": self.cpu_ms, FLASK: floor.cpu_ms}
        failed = f"{self.failures + floor.failures} failed requests" if self.failures + floor.failures else ""
        flask_p50, flask_rate = Stat.of(floor.p50s, "ms"), Stat.of(floor.rates, "req/s")
        return [
            Row(f"{label}: p50", Stat.of(self.p50s, "ms"), None, flask_p50, FLASK, flask=flask_p50),
            Row(
                f"{label}: requests/s",
                Stat.of(self.rates, "req/s"),
                None,
                flask_rate,
                FLASK,
                notes=f"{CONCURRENT_SECONDS:.0f} s per run, a keep-alive connection per thread; "
                f"{cpu_note(cpu, 'request')}",
                extra_notes=(failed,),
                flask=flask_rate,
            ),
        ]


@dataclass
class _Worker:
    """One client thread: its workspace (locked by it), the next serial, and its timings."""

    client: Client
    workspace_id: str
    serial: int = 1_000_001
    create_ms: list[float] = field(default_factory=list)
    download_ms: list[float] = field(default_factory=list)


def _start_worker(server: BenchServer, name: str) -> _Worker:
    client = Client(server.url, f"Bearer {server.token}")
    body = json.dumps({"data": {"type": "workspaces", "attributes": {"name": name}}}).encode()
    status, data = client.request("POST", f"{API}/organizations/{ORG}/workspaces", body, JSONAPI)
    if status != 201:
        raise RuntimeError(f"creating workspace {name}: HTTP {status}: {data[:300]!r}")
    workspace_id = json.loads(data)["data"]["id"]
    client.timed("POST", f"{API}/workspaces/{workspace_id}/actions/lock", b'{"reason":"bench"}', JSONAPI)
    return _Worker(client, workspace_id)


def _cycle(worker: _Worker, template: StateTemplate) -> None:
    """Create a state version inline (as Terraform 1.0.3 does), then download it by its signed URL."""
    state = template.body(worker.serial)
    attributes = {
        "serial": worker.serial,
        "md5": hashlib.md5(state, usedforsecurity=False).hexdigest(),
        "lineage": template.lineage,
        "state": base64.b64encode(state).decode(),
        "force": False,
    }
    body = json.dumps({"data": {"type": "state-versions", "attributes": attributes}}).encode()
    start = time.perf_counter()
    status, data = worker.client.request(
        "POST", f"{API}/workspaces/{worker.workspace_id}/state-versions", body, JSONAPI
    )
    worker.create_ms.append((time.perf_counter() - start) * 1000)
    if status != 201:
        raise RuntimeError(f"create state version: HTTP {status}: {data[:300]!r}")
    url = json.loads(data)["data"]["attributes"]["hosted-state-download-url"]
    path = url[url.index(API) :]
    start = time.perf_counter()
    status, downloaded = worker.client.request("GET", path)
    worker.download_ms.append((time.perf_counter() - start) * 1000)
    if status != 200 or downloaded != state:
        raise RuntimeError(f"download: HTTP {status}, {len(downloaded)} bytes")
    worker.serial += 1


def _run_clients(workers: list[_Worker], template: StateTemplate) -> float:
    """Run every worker's cycles in its own thread; the elapsed seconds. Raises the first failure."""
    errors: list[BaseException] = []

    def loop(worker: _Worker) -> None:
        try:
            for _ in range(CYCLES_PER_THREAD):
                _cycle(worker, template)
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    pool = [threading.Thread(target=loop, args=(w,)) for w in workers]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - start
    for worker in workers:
        worker.client.close()
    if errors:
        raise RuntimeError(f"state version cycle failed: {errors[0]!r}")
    return elapsed


def state_rows(server: BenchServer, template: StateTemplate, threads: int) -> list[Row]:
    """p50 create and download latency and cycles/s with ``threads`` clients, each on its own workspace."""
    create, download, rates = [], [], []
    for run_number in range(RUNS):
        workers = [_start_worker(server, f"bench-c{threads}-r{run_number}-{i}") for i in range(threads)]
        elapsed = _run_clients(workers, template)
        create.append(p50([ms for w in workers for ms in w.create_ms]))
        download.append(p50([ms for w in workers for ms in w.download_ms]))
        rates.append(threads * CYCLES_PER_THREAD / elapsed)
    label = f"1 MB state version, concurrency {threads}"
    note = f"{CYCLES_PER_THREAD} cycles per client per run; inline create (base64 in JSON:API), signed-URL download"
    return [
        Row(f"{label}: create p50", Stat.of(create, "ms"), notes=note),
        Row(f"{label}: download p50", Stat.of(download, "ms")),
        Row(f"{label}: create + download cycles/s", Stat.of(rates, "cycles/s")),
    ]


if __name__ == "__main__":
    print(render_table(run()))
