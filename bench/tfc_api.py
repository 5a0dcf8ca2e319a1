"""TFC API: workspace listing with 10,000 workspaces in one organization, GET workspace, and 1 MB state version
create + download at concurrency 1 and 8, against a live gunicorn server (``python -m bench tfc_api``)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from bench.clients import Client, StateTemplate, p50, terraform_state
from bench.report import Row, Stat, Target, render_table
from bench.servers import ORG, BenchServer, statesman
from tests.live_server import REPO_ROOT

WORKSPACES = 10_000
LIST_SAMPLES = 200
RUNS = 3
STATE_SIZE = 1024 * 1024
CYCLES_PER_THREAD = 12
API = "/api/v2"
JSONAPI = {"Content-Type": "application/vnd.api+json"}

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
            rows.append(get_workspace_row(client))
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
    """Milliseconds per request (after a short warm-up)."""
    for _ in range(5):
        client.timed("GET", path)
    return [client.timed("GET", path) * 1000 for _ in range(samples)]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def list_rows(client: Client) -> list[Row]:
    """p50 (target) and p95 (info) of three listings, each measured in ``RUNS`` runs."""
    cases = [
        ("page of 20", f"{API}/organizations/{ORG}/workspaces?page[size]=20&page[number]=7", True),
        ("page of 100", f"{API}/organizations/{ORG}/workspaces?page[size]=100&page[number]=7", False),
        (
            "search[name]=app- (5,000 match), page of 20",
            f"{API}/organizations/{ORG}/workspaces?search[name]=app-",
            True,
        ),
    ]
    rows = []
    for label, path, targeted in cases:
        runs = [latencies(client, path, LIST_SAMPLES) for _ in range(RUNS)]
        metric = f"list workspaces ({WORKSPACES:,} in org), {label}"
        rows.append(
            Row(
                f"{metric}: p50",
                Stat.of([p50(r) for r in runs], "ms"),
                Target("<=", 20, "value", "ms") if targeted else None,
                notes=f"{LIST_SAMPLES} sequential requests per run, 1 client; SQLite metadata",
            )
        )
        rows.append(Row(f"{metric}: p95", Stat.of([percentile(r, 0.95) for r in runs], "ms")))
    return rows


def get_workspace_row(client: Client) -> Row:
    path = f"{API}/organizations/{ORG}/workspaces/app-00042"
    runs = [p50(latencies(client, path, LIST_SAMPLES)) for _ in range(RUNS)]
    return Row("GET workspace (TFC API) p50, 1 client", Stat.of(runs, "ms"), Target("<=", 3, "value", "ms"))


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
