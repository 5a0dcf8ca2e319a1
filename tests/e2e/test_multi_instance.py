"""Two server processes (2 gunicorn workers each) behind one PostgreSQL, one S3 bucket and one lock backend.

32 clients alternate between the instances request by request and run Terraform's apply cycle (LOCK, GET,
POST serial + 1, UNLOCK) on 4 workspaces. The hold intervals every client observed must never overlap per
workspace, every accepted write must land as its own version, every version must decrypt, and nothing may 5xx.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.e2e.backends import (
    MotoS3,
    body_headers,
    postgres_url,
    scratch_postgres_database,
    start_live_servers,
    state_body,
    stop_live_servers,
)
from tests.factories import lock_info
from tests.live_server import REPO_ROOT, LiveServer
from tests.services import REDIS_URL, require_service

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = 32
WORKSPACES = [f"ws-{n}" for n in range(4)]
DURATION_SECONDS = 30.0
REQUEST_TIMEOUT = 60
MIN_BACKOFF_SECONDS = 0.01
MAX_BACKOFF_SECONDS = 0.32
ORG = "multi"

# Runs in a subprocess with the servers' environment: decrypts every stored version through the app's own code.
VERIFY_SCRIPT = """
import hashlib, json, sys
from app import create_app
from app.repositories import orgs, state_versions, workspaces
app = create_app()
report = {}
with app.app_context():
    found, _ = workspaces.list_workspaces(orgs.require_org(sys.argv[1]))
    for ws in found:
        versions, total = state_versions.list_versions(ws)
        rows = []
        for version in versions:
            try:
                data = state_versions.read_version_bytes(version)
            except Exception as exc:
                rows.append({"serial": version.serial, "error": repr(exc)})
                continue
            doc = json.loads(data)
            rows.append({"serial": version.serial, "doc_serial": doc["serial"], "lineage": doc["lineage"],
                         "sha256_ok": hashlib.sha256(data).hexdigest() == version.sha256})
        report[ws.name] = {"id": ws.id, "total": total, "versions": rows,
                           "current_sha256": state_versions.get_current_version(ws).sha256}
print(json.dumps(report))
"""


@dataclass
class Cluster:
    """The two instances, the token clients use and the S3 bucket behind them."""

    servers: list[LiveServer]
    token: str
    s3: MotoS3
    lock_env: dict[str, str]


@dataclass
class ClientReport:
    """What one client saw."""

    writes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    intervals: list[tuple[str, float, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@pytest.fixture(params=["redis", "postgres"], ids=["redis-locks", "postgres-locks"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    require_service("postgres")
    lock_env = {"LOCK_BACKEND": request.param}
    if request.param == "redis":
        require_service("redis")
        # a namespace of this test's own in the shared Redis
        lock_env.update(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=f"statesman-e2e:{uuid.uuid4().hex}:")
    s3 = MotoS3()
    servers: list[LiveServer] = []
    try:
        with scratch_postgres_database() as database:
            env = {"DATABASE_URL": postgres_url(database), "OPENTACO_MAX_VERSIONS": "0", **lock_env, **s3.server_env()}
            try:
                servers = start_live_servers([tmp_path / "a", tmp_path / "b"], workers=2, extra_env=env)
                token = servers[0].create_token(ORG, None)  # an organization token: no user, so no roles needed
                yield Cluster(servers, token, s3, lock_env)
            finally:
                stop_live_servers(servers)
                if request.param == "redis":
                    _redis_keys(lock_env["REDIS_KEY_PREFIX"], delete=True)
    finally:
        s3.stop()


def _redis_keys(prefix: str, delete: bool = False) -> list[bytes]:
    """The keys under ``prefix`` in the shared Redis (deleted when ``delete``)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys and delete:
            client.delete(*keys)
        return keys
    finally:
        client.close()


def _client(number: int, cluster: Cluster, deadline: float, report: ClientReport) -> None:
    """One client thread; a connection error or timeout is reported, not lost with the thread."""
    try:
        _run_cycles(number, cluster, deadline, report)
    except requests.RequestException as exc:
        report.problems.append(f"client {number}: {exc!r}")


def _run_cycles(number: int, cluster: Cluster, deadline: float, report: ClientReport) -> None:
    """LOCK, GET, POST serial + 1, UNLOCK on random workspaces until ``deadline``, alternating instances."""
    rng = random.Random(number)
    turn = number
    urls = [server.url for server in cluster.servers]

    def call(method: str, workspace: str, **kwargs: object) -> requests.Response:
        nonlocal turn
        base = urls[turn % len(urls)]
        turn += 1
        sent = time.monotonic()
        url = f"{base}/state/{ORG}/{workspace}"
        response = session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)  # type: ignore[arg-type]
        report.seconds[method] += time.monotonic() - sent
        report.statuses[(method, response.status_code)] += 1
        return response

    with requests.Session() as session:
        session.auth = ("client", cluster.token)
        backoff = MIN_BACKOFF_SECONDS
        while time.monotonic() < deadline:
            workspace = rng.choice(WORKSPACES)
            info = lock_info(uuid.uuid4().hex, f"client-{number}@e2e")
            lock_id = json.loads(info)["ID"]
            locked = call("LOCK", workspace, data=info, headers=body_headers(info))
            if locked.status_code == 423:
                # capped exponential backoff with jitter, as a client waiting with -lock-timeout would
                time.sleep(rng.uniform(backoff / 2, backoff))
                backoff = min(2 * backoff, MAX_BACKOFF_SECONDS)
                continue
            backoff = MIN_BACKOFF_SECONDS
            if locked.status_code != 200:
                report.problems.append(f"LOCK {workspace}: {locked.status_code} {locked.text[:300]}")
                continue
            acquired = time.monotonic()
            try:
                current = call("GET", workspace)
                if current.status_code == 200:
                    document = current.json()
                    new = state_body(document["serial"] + 1, document["lineage"], writer=f"client-{number}")
                    written = call("POST", workspace, params={"ID": lock_id}, data=new, headers=body_headers(new))
                    if written.status_code == 200:
                        report.writes[workspace] += 1
                    else:
                        report.problems.append(f"POST {workspace}: {written.status_code} {written.text[:300]}")
                else:
                    report.problems.append(f"GET {workspace}: {current.status_code} {current.text[:300]}")
            finally:
                released = time.monotonic()
                unlocked = call("UNLOCK", workspace, data=info, headers=body_headers(info))
                report.intervals.append((workspace, acquired, released))
            if unlocked.status_code != 200:
                report.problems.append(f"UNLOCK {workspace}: {unlocked.status_code} {unlocked.text[:300]}")
                return  # the lock may still be held: stop rather than report a flood of 423s


def _overlaps(intervals: list[tuple[str, float, float]]) -> list[str]:
    found = []
    for workspace in WORKSPACES:
        held = sorted((start, end) for name, start, end in intervals if name == workspace)
        for (start_a, end_a), (start_b, end_b) in itertools.pairwise(held):
            if start_b < end_a:
                found.append(f"{workspace}: [{start_a:.4f}, {end_a:.4f}] overlaps [{start_b:.4f}, {end_b:.4f}]")
    return found


def test_two_instances_share_locks_metadata_and_storage(cluster: Cluster) -> None:
    first = cluster.servers[0]
    auth = ("client", cluster.token)
    lineages = {}
    for index, workspace in enumerate(WORKSPACES):
        # Terraform 1.0.3 writes a new workspace's first state with serial 0: client writes then count from 1.
        lineages[workspace] = str(uuid.uuid4())
        initial = state_body(0, lineages[workspace], writer="setup")
        created = requests.post(
            f"{cluster.servers[index % 2].url}/state/{ORG}/{workspace}",
            data=initial,
            headers=body_headers(initial),
            auth=auth,
            timeout=REQUEST_TIMEOUT,
        )
        assert created.status_code == 200, created.text

    reports = [ClientReport() for _ in range(CLIENTS)]
    started = time.monotonic()
    deadline = started + DURATION_SECONDS
    threads = [
        threading.Thread(target=_client, args=(n, cluster, deadline, reports[n]), name=f"client-{n}")
        for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION_SECONDS + 2 * REQUEST_TIMEOUT)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), "clients did not finish"

    writes: Counter[str] = sum((r.writes for r in reports), Counter())
    statuses: Counter[tuple[str, int]] = sum((r.statuses for r in reports), Counter())
    seconds: defaultdict[str, float] = defaultdict(float)
    for r in reports:
        for method, spent in r.seconds.items():
            seconds[method] += spent
    calls: Counter[str] = Counter()
    for (method, _), count in statuses.items():
        calls[method] += count
    latency = ", ".join(f"{method} {1000 * seconds[method] / calls[method]:.0f}ms" for method in sorted(calls))
    intervals = [interval for r in reports for interval in r.intervals]
    problems = [problem for r in reports for problem in r.problems]
    cycles = sum(writes.values())
    print(
        f"\nmulti-instance ({cluster.lock_env['LOCK_BACKEND']} locks, 2 instances x 2 workers, {CLIENTS} clients): "
        f"{cycles} lock/write cycles in {elapsed:.1f}s = {cycles / elapsed:.1f} cycles/s "
        f"({sum(statuses.values()) / elapsed:.0f} requests/s, {statuses[('LOCK', 423)]} lock conflicts); "
        f"writes per workspace {dict(sorted(writes.items()))}; mean latency {latency}"
    )

    server_errors = {key: count for key, count in statuses.items() if key[1] >= 500}
    assert not server_errors, f"5xx answers: {server_errors}; log tail: {_log_tail(cluster)}"
    assert not problems, problems[:20]
    assert set(statuses) <= {("LOCK", 200), ("LOCK", 423), ("GET", 200), ("POST", 200), ("UNLOCK", 200)}, statuses
    assert not _overlaps(intervals), _overlaps(intervals)[:10]
    assert all(writes[w] > 0 for w in WORKSPACES), writes

    finals = {}
    for index, workspace in enumerate(WORKSPACES):
        final = requests.get(
            f"{cluster.servers[index % 2].url}/state/{ORG}/{workspace}", auth=auth, timeout=REQUEST_TIMEOUT
        )
        assert final.status_code == 200
        assert final.json()["serial"] == writes[workspace], (workspace, final.json()["serial"], writes[workspace])
        assert final.json()["lineage"] == lineages[workspace]
        finals[workspace] = hashlib.sha256(final.content).hexdigest()

    report = _verify_versions(first)
    assert sorted(report) == WORKSPACES
    for workspace, found in report.items():
        assert found["total"] == writes[workspace] + 1  # the initial write plus one version per accepted write
        rows = found["versions"]
        assert [row.get("error") for row in rows if "error" in row] == []
        assert sorted(row["serial"] for row in rows) == list(range(writes[workspace] + 1))
        assert all(row["doc_serial"] == row["serial"] and row["sha256_ok"] for row in rows)
        assert {row["lineage"] for row in rows} == {lineages[workspace]}
        assert found["current_sha256"] == finals[workspace]

    s3_objects = cluster.s3.keys()
    assert len(s3_objects) == sum(writes.values()) + len(WORKSPACES)
    assert all(key.startswith("e2e/states/") for key in s3_objects)
    if "REDIS_KEY_PREFIX" in cluster.lock_env:
        assert _redis_keys(cluster.lock_env["REDIS_KEY_PREFIX"]) == [], "locks left behind in Redis"


def _verify_versions(server: LiveServer) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-c", VERIFY_SCRIPT, ORG],
        env=server.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return report


def _log_tail(cluster: Cluster) -> str:
    return "\n".join(server.log_path.read_text()[-2000:] for server in cluster.servers)
