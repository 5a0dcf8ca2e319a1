"""Metrics and logs of a real server: ``/metrics`` totals over several gunicorn workers with bounded labels, a
SIGTERM that lets an in-flight upload finish, and JSON logs of Terraform runs through every API that hold neither
the token nor anything of the state."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.terraform_cli import Terraform, TerraformBinary, http_backend
from tests.e2e.tfc import TfcServer, start_tfc_server
from tests.factories import lock_info
from tests.live_server import LiveServer, start_server

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "scrape-token-for-e2e"
STATE_ROUTE = "/state/<org>/<workspace>"


def scrape(server: LiveServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = requests.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_server(tmp_path: Path) -> Iterator[LiveServer]:
    """Three workers; the metrics directory is the operator's (so the test can see one file per worker)."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from an earlier run")
    server = start_server(
        tmp_path / "server",
        workers=3,
        extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "METRICS_TOKEN": METRICS_TOKEN},
    )
    yield server
    server.stop()


def test_metrics_totals_over_several_workers_match_the_traffic_and_no_label_is_a_raw_path(
    metrics_server: LiveServer,
) -> None:
    server = metrics_server
    metrics_dir = Path(server.env["PROMETHEUS_MULTIPROC_DIR"])
    assert not (metrics_dir / "counter_999999.db").exists(), "a previous run's files must be wiped at start"
    token = server.create_token("acme", "alice")
    auth = ("alice", token)
    assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 401
    workspace, state = "observed-ws-7f3a", {"version": 4, "serial": 1, "lineage": "l", "outputs": {}, "resources": []}
    url = f"{server.url}/state/acme/{workspace}"
    assert requests.post(url, data=json.dumps(state), auth=auth, timeout=10).status_code == 200
    # Each call on a new connection, so the three workers share the traffic.
    for _ in range(40):
        assert requests.get(url, auth=auth, timeout=10).status_code == 200
    for n in range(7):
        assert requests.get(f"{url}-missing-{n}", auth=auth, timeout=10).status_code == 404
    assert requests.request("LOCK", url, data=lock_info("holder"), auth=auth, timeout=10).status_code == 200
    for n in range(5):
        conflict = requests.request("LOCK", url, data=lock_info(f"other-{n}"), auth=auth, timeout=10)
        assert conflict.status_code == 423
    for n in range(3):
        assert requests.get(f"{server.url}/no-such-{workspace}-{n}", timeout=10).status_code == 404

    found = scrape(server)
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 2, "the traffic should have reached several workers"
    requests_total = "statesman_http_requests_total"
    assert value(found, requests_total, route=STATE_ROUTE, method="GET", status="200") == 40
    assert value(found, requests_total, route=STATE_ROUTE, method="GET", status="404") == 7
    assert value(found, requests_total, route=STATE_ROUTE, method="POST", status="200") == 1
    assert value(found, requests_total, route=STATE_ROUTE, method="LOCK", status="200") == 1
    assert value(found, requests_total, route=STATE_ROUTE, method="LOCK", status="423") == 5
    assert value(found, requests_total, route="unmatched", method="GET", status="404") == 3
    assert value(found, "statesman_lock_conflicts_total", api="http_backend") == 5
    assert value(found, "statesman_http_request_duration_seconds_count", route=STATE_ROUTE, method="GET") == 47
    assert value(found, "statesman_state_write_size_bytes_count") == 1
    assert value(found, "statesman_state_write_size_bytes_sum") == len(json.dumps(state))
    assert value(found, "statesman_http_requests_in_progress") == 1  # this scrape

    routes = {dict(labels)["route"] for (_name, labels) in found if "route" in dict(labels)}
    assert routes == {STATE_ROUTE, "unmatched", "/healthz", "/metrics"}
    id_shaped = re.compile(r"[a-z]{2,4}-[A-Za-z0-9]{16}")
    names = ("acme", workspace, "missing", "no-such", "holder", "other-", "alice", token)
    for _name, labels in found:
        for label_value in dict(labels).values():
            assert not any(word in label_value for word in names), label_value
            assert not id_shaped.search(label_value), label_value

    # A worker that dies takes its live gauge with it, but not its share of the totals.
    # (a file may belong to a worker gunicorn already replaced: pick one that is alive)
    master = server.process.pid if server.process else None
    worker = next(pid for pid in sorted(_pids(metrics_dir)) if pid != master and _alive(pid))
    os.kill(worker, signal.SIGKILL)
    time.sleep(2)
    after = scrape(server)
    assert value(after, requests_total, route=STATE_ROUTE, method="GET", status="200") == 40
    assert value(after, "statesman_http_requests_in_progress") == 1


def _pids(metrics_dir: Path) -> set[int]:
    return {int(path.stem.split("_")[1]) for path in metrics_dir.glob("counter_*.db")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_lets_an_in_flight_upload_finish_and_refuses_new_connections(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", workers=2)
    try:
        token = server.create_token("acme", "alice")
        state = {"version": 4, "serial": 1, "lineage": "l", "outputs": {}, "resources": [], "pad": "x" * 2_000_000}
        body = json.dumps(state).encode()
        credentials = base64.b64encode(f"alice:{token}".encode()).decode()
        head = (
            f"POST /state/acme/draining HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Basic {credentials}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        upload = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        upload.sendall(head + body[: len(body) // 2])
        time.sleep(1)  # the request is being read by a worker thread
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGTERM)

        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            except ConnectionRefusedError:
                break
            assert time.monotonic() < deadline, "the server still accepts connections after SIGTERM"
            time.sleep(0.2)

        for offset in range(len(body) // 2, len(body), 65536):  # the rest, slowly
            upload.sendall(body[offset : offset + 65536])
            time.sleep(0.05)
        answer = b""
        while chunk := upload.recv(65536):
            answer += chunk
        upload.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:500]
        assert server.process.wait(timeout=60) == 0
    finally:
        server.stop()


# -- logs of Terraform runs -------------------------------------------------------------------------------------

MARKER = "planted-marker-c41d9e"
TOKEN_SHAPE = re.compile(r"stm[a-z]*_[A-Za-z0-9_-]{10,}")


@pytest.fixture(scope="module")
def logging_server(tmp_path_factory: pytest.TempPathFactory, provider_mirror: Path) -> Iterator[TfcServer]:
    """An HTTPS server (every API) logging JSON at info level."""
    tfc = start_tfc_server(
        tmp_path_factory.mktemp("logs"),
        provider_mirror,
        workers=2,
        extra_env={"LOG_FORMAT": "json", "LOG_LEVEL": "info"},
    )
    try:
        yield tfc
    finally:
        tfc.server.stop()


def planted(backend: str) -> str:
    """A configuration whose variable, resource trigger and output all carry the marker."""
    return (
        f'terraform {{\n{backend}  required_providers {{\n    null = {{\n      source  = "hashicorp/null"\n'
        '      version = "2.1.2"\n    }\n  }\n}\n'
        'variable "marker" {\n  type = string\n}\n'
        'resource "null_resource" "planted" {\n  triggers = {\n    value = var.marker\n  }\n}\n'
        'output "planted" {\n  value = "${var.marker}-output"\n}\n'
    )


def test_json_logs_of_terraform_runs_through_every_api_hold_no_token_and_no_state(
    logging_server: TfcServer,
    terraform_bin: TerraformBinary,
    terraform: Callable[..., Terraform],
    workspace: str,
) -> None:
    server, token = logging_server.server, logging_server.token
    env = {**logging_server.env(), "TF_VAR_marker": MARKER, "TF_HTTP_PASSWORD": token}
    http = f"{server.url}/state/acme/{workspace[:80]}-http"
    unit = f"{workspace[:80]}-unit"
    runs = {
        "http": http_backend(http, username="terraform"),
        "management": http_backend(f"{server.url}/v1/backend/{unit}", username="terraform"),
        "tfc": logging_server.backend(
            f'name = "{workspace[:80]}-tfc"', kind="cloud" if terraform_bin.at_least(1, 1) else "remote"
        ),
    }
    for name, backend in runs.items():
        tf = terraform(name, **env)
        tf.write(planted(backend))
        tf.ok("init", "-input=false")
        tf.ok("apply", "-auto-approve", "-input=false")
        assert tf.ok("output", "-raw", "planted").stdout == f"{MARKER}-output"
        tf.expect(0, "plan", "-detailed-exitcode", "-input=false")
    # The management API's own views, with the token as a bearer.
    listed = requests.get(
        f"{server.url}/v1/units/{unit}/download",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=str(logging_server.ca),
    )
    assert listed.status_code == 200 and MARKER in listed.text

    time.sleep(0.5)  # the last request's line is written when its response closes
    log = server.log_path.read_text()
    assert token not in log and not TOKEN_SHAPE.search(log)
    assert MARKER not in log
    assert "signature=" not in log and "Authorization" not in log
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(entry["logger"] == "gunicorn.error" for entry in entries), "gunicorn's own lines are JSON too"
    requests_logged = [entry for entry in entries if entry["logger"] == "statesman.request"]
    mine = [entry for entry in requests_logged if str(entry.get("workspace", "")).startswith(workspace[:80])]
    routes = {entry["route"] for entry in mine}
    assert {STATE_ROUTE, "/v1/backend/<unit>", "/v1/units/<ref>/download"} <= routes, routes
    assert any(route.startswith(("/api/v2/", "/tfe/api/v2/")) for route in routes), routes
    for entry in requests_logged:
        assert re.fullmatch(r"[0-9a-f]{32}", str(entry["request_id"])), entry
        assert {"time", "level", "message", "method", "route", "status", "duration_ms"} <= entry.keys()
    assert {entry["user"] for entry in mine} == {"alice"}
    assert {entry["org"] for entry in mine} == {"acme"}
