"""The cloud block's state write (Terraform 1.6+, go-tfe's ``StateVersions.Upload``), 1 MB, 1 client, against
nginx accepting the same bytes with DAV PUT and a do-nothing Flask app answering the same requests.

One cycle is what Terraform 1.11 sends for one state write: create the state version without the state (serial,
md5, lineage and the JSON outputs) on a workspace its token has locked, PUT the state to ``hosted-state-upload-url``
and, at the same time on a second connection, the JSON state to ``hosted-json-state-upload-url``, then read the
version again (``GET /api/v2/state-versions/<id>``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from bench.clients import SERIAL_BASE, Client, StateTemplate, cloud_block_copies, terraform_state
from bench.report import Row, Stat, Target, cpu_note
from bench.servers import (
    ORG,
    BenchServer,
    Nginx,
    ReferenceApp,
    nginx,
    nginx_binary,
    p50_and_cpu,
    reference_app,
    statesman,
)

MIB = 1024 * 1024
RUNS = 5
CYCLES_PER_RUN = 20
WARM_UP = 5
API = "/api/v2"
JSONAPI = {"Content-Type": "application/vnd.api+json"}
UPLOAD = {"Content-Type": "application/octet-stream"}
FLASK = "do-nothing Flask"
METRIC = "cloud-block state write p50 (create + 2 concurrent PUTs + re-read, 1 MB, 1 client)"


def run() -> list[Row]:
    if nginx_binary() is None:
        return [Row(METRIC, None, Target("<=", 3.0), notes="skipped: nginx not installed (apt-get install -y nginx)")]
    template = terraform_state(MIB)
    with statesman("cloud-block") as server:
        writer = CloudWriter.start(server, template)
        try:
            version_document = writer.cycle()  # the re-read document, for the do-nothing side to encode
            with nginx({}) as web, reference_app({"state-version.json": version_document}) as flask_app:
                return measure(server, writer, web, flask_app, template)
        finally:
            writer.close()


@dataclass
class CloudWriter:
    """A Terraform 1.11 client of one workspace it has locked: the API connection, and two without the token for
    the signed upload URLs (go-tfe sends both uploads at the same time and no token with them)."""

    client: Client
    uploads: tuple[Client, Client]
    pool: ThreadPoolExecutor
    workspace_id: str
    template: StateTemplate
    json_state: bytes
    json_outputs: bytes
    serial: int = SERIAL_BASE + 1

    @classmethod
    def start(cls, server: BenchServer, template: StateTemplate) -> CloudWriter:
        authorization = f"Bearer {server.token}"
        client = Client(server.url, authorization)
        body = json.dumps({"data": {"type": "workspaces", "attributes": {"name": "cloud-block"}}}).encode()
        status, data = client.request("POST", f"{API}/organizations/{ORG}/workspaces", body, JSONAPI)
        if status != 201:
            raise RuntimeError(f"creating the workspace: HTTP {status}: {data[:300]!r}")
        workspace_id = json.loads(data)["data"]["id"]
        # only the holder of the workspace lock may create a state version, as in TFE
        client.timed("POST", f"{API}/workspaces/{workspace_id}/actions/lock", b'{"reason":"bench"}', JSONAPI)
        json_state, json_outputs = cloud_block_copies(template.body(SERIAL_BASE))
        uploads = (Client(server.url), Client(server.url))
        pool = ThreadPoolExecutor(max_workers=1)
        return cls(client, uploads, pool, workspace_id, template, json_state, json_outputs)

    def cycle(self) -> bytes:
        """One state write; returns the version document of the final read."""
        state = self.template.body(self.serial)
        attributes = {
            "serial": self.serial,
            "md5": hashlib.md5(state, usedforsecurity=False).hexdigest(),
            "lineage": self.template.lineage,
            "force": False,
            "json-state-outputs": base64.b64encode(self.json_outputs).decode(),
        }
        body = json.dumps({"data": {"type": "state-versions", "attributes": attributes}}).encode()
        path = f"{API}/workspaces/{self.workspace_id}/state-versions"
        status, data = self.client.request("POST", path, body, JSONAPI)
        if status != 201:
            raise RuntimeError(f"create state version: HTTP {status}: {data[:300]!r}")
        version = json.loads(data)["data"]
        urls = version["attributes"]
        json_upload = self.pool.submit(
            self.uploads[1].timed, "PUT", _path(urls["hosted-json-state-upload-url"]), self.json_state, UPLOAD
        )
        self.uploads[0].timed("PUT", _path(urls["hosted-state-upload-url"]), state, UPLOAD)
        json_upload.result()
        status, document = self.client.request("GET", f"{API}/state-versions/{version['id']}")
        if status != 200 or json.loads(document)["data"]["attributes"]["status"] != "finalized":
            raise RuntimeError(f"re-read state version: HTTP {status}: {document[:300]!r}")
        self.serial += 1
        return document

    def close(self) -> None:
        self.pool.shutdown()
        for client in (self.client, *self.uploads):
            client.close()


def _path(url: str) -> str:
    """The path and query of a URL the server signed (its host is the server's own base URL)."""
    return url[url.index(API) :]


def flask_cycle(client: Client, uploads: Client, pool: ThreadPoolExecutor, state: bytes, json_state: bytes) -> None:
    """The same four requests and bodies to the do-nothing app: POST, two concurrent PUTs, GET of a document."""
    client.timed("POST", "/sink/state-versions", b'{"data":{"type":"state-versions"}}', JSONAPI)
    json_upload = pool.submit(uploads.timed, "PUT", "/sink/json-content", json_state, UPLOAD)
    client.timed("PUT", "/sink/content", state, UPLOAD)
    json_upload.result()
    client.timed("GET", "/json/state-version.json")


def measure(
    server: BenchServer, writer: CloudWriter, web: Nginx, flask_app: ReferenceApp, template: StateTemplate
) -> list[Row]:
    """Cycles of ours, do-nothing Flask cycles and nginx DAV PUTs of the state, run by run."""
    state = template.body(SERIAL_BASE)
    floor, floor_uploads, nginx_client = Client(flask_app.url), Client(flask_app.url), Client(web.url)
    nginx_client.request("PUT", "/dav/state.json", state)  # creates the file: the measured PUTs replace it (204)
    sides: dict[str, tuple[Callable[[], list[int]], Callable[[], object]]] = {
        "ours": (server.pids, writer.cycle),
        FLASK: (flask_app.pids, partial(flask_cycle, floor, floor_uploads, writer.pool, state, writer.json_state)),
        "nginx": (web.pids, partial(nginx_client.timed, "PUT", "/dav/state.json", state, expect=204)),
    }
    latency: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    for _, call in sides.values():
        for _ in range(WARM_UP):
            call()
    for _ in range(RUNS):
        for name, (pids, call) in sides.items():
            p50_ms, cpu_ms = p50_and_cpu(pids(), [call] * CYCLES_PER_RUN)
            latency[name].append(p50_ms)
            cpu[name].append(cpu_ms)
    for client in (floor, floor_uploads, nginx_client):
        client.close()
    return _rows(latency, cpu, len(writer.json_state))


def _rows(latency: dict[str, list[float]], cpu: dict[str, list[float]], json_size: int) -> list[Row]:
    flask_cpu = Stat.of(cpu[FLASK], "ms")
    return [
        Row(
            METRIC,
            Stat.of(latency["ours"], "ms"),
            Target("<=", 3.0),
            Stat.of(latency["nginx"], "ms"),
            "nginx DAV PUT of the state",
            notes=f"{CYCLES_PER_RUN} cycles per run, each a new serial; JSON state {json_size / MIB:.2f} MiB; "
            f"{cpu_note({'ours': cpu['ours'], FLASK: cpu[FLASK]}, 'cycle')}; nginx CPU/PUT "
            f"{statistics.median(cpu['nginx']):.2f} ms",
            flask=Stat.of(latency[FLASK], "ms"),
        ),
        Row(
            "  server CPU per cloud-block state write",
            Stat.of(cpu["ours"], "ms"),
            None,
            flask_cpu,
            FLASK,
            notes="user + system time of the gunicorn master and workers (/proc); no target of its own",
            flask=flask_cpu,
        ),
    ]
