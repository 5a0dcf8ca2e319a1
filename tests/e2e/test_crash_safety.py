"""``kill -9`` of the whole server while a ~50 MB state streams in: afterwards the old or the new state, never a mix."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.live_server import LiveServer, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KILLS = 12
# Where a kill lands: in the body, in the server's answer time after it, or while the object is being stored.
MODES = ("body", "answer", "object")
LINEAGE = "5c4b6f0e-1d2a-4c3b-9e8f-0a1b2c3d4e5f"
UPLOAD_CHUNK = 256 * 1024
# Odd serials get the bigger document, even ones the smaller, so consecutive states differ in length and content.
SIZES = {1: 50 * 1024 * 1024, 0: 42 * 1024 * 1024}
PATH = "/state/acme/crash"


def _resources(variant: int, target_size: int) -> bytes:
    """The ``resources`` array's items: managed resources with bulky attributes, about ``target_size`` bytes."""
    items = []
    size, index = 0, 0
    while size < target_size:
        item = json.dumps(
            {
                "mode": "managed",
                "type": "null_resource",
                "name": f"r{variant}_{index}",
                "provider": 'provider["registry.terraform.io/hashicorp/null"]',
                "instances": [
                    {
                        "schema_version": 0,
                        "attributes": {
                            "id": f"{variant}{index:012d}",
                            "triggers": {"blob": f"{variant}-{index}-" + "x" * (700 + 37 * variant)},
                        },
                        "sensitive_attributes": [],
                    }
                ],
            },
            indent=2,
        ).encode()
        items.append(item)
        size += len(item) + 2
        index += 1
    return b",\n".join(items)


class States:
    """Deterministic state documents by serial (built from two cached bodies)."""

    def __init__(self) -> None:
        self._bodies = {parity: _resources(parity, size) for parity, size in SIZES.items()}

    def __call__(self, serial: int) -> bytes:
        head = json.dumps(
            {
                "version": 4,
                "terraform_version": "1.0.3",
                "serial": serial,
                "lineage": LINEAGE,
                "outputs": {"serial": {"value": serial, "type": "number"}},
            },
            indent=2,
        )
        return head[:-2].encode() + b',\n  "resources": [\n' + self._bodies[serial % 2] + b"\n  ]\n}\n"


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class Upload(threading.Thread):
    """POST a state as a chunked, streamed body; ``status`` is the answer, ``error`` what went wrong instead.

    ``reached`` is set once ``trigger_at`` bytes have left the client, ``body_sent`` once all of them have.
    """

    def __init__(self, server: LiveServer, token: str, data: bytes, trigger_at: int | None = None) -> None:
        super().__init__(daemon=True)
        self.server, self.token, self.data = server, token, data
        self.trigger_at = len(data) if trigger_at is None else trigger_at
        self.reached, self.body_sent = threading.Event(), threading.Event()
        self.status: int | None = None
        self.error: BaseException | None = None

    def _stream(self) -> Iterator[bytes]:
        view = memoryview(self.data)
        for start in range(0, len(self.data), UPLOAD_CHUNK):
            if start >= self.trigger_at:
                self.reached.set()
            yield bytes(view[start : start + UPLOAD_CHUNK])
        self.reached.set()
        self.body_sent.set()

    def run(self) -> None:
        try:
            with requests.Session() as session:
                reply = session.post(
                    self.server.url + PATH,
                    data=self._stream(),
                    auth=("crash", self.token),
                    headers={"Content-Type": "application/json", "Content-MD5": content_md5(self.data)},
                    timeout=120,
                )
                self.status = reply.status_code
                reply.close()
        except requests.RequestException as exc:
            self.error = exc

    def wait_for(self, event: threading.Event) -> None:
        """Block until ``event`` is set; fails fast when the request ended first (refused early, say)."""
        deadline = time.monotonic() + 120
        while not event.wait(0.01):
            assert self.is_alive(), f"the upload ended early: {self.status} {self.error!r}"
            assert time.monotonic() < deadline, "the upload stalled"


def upload(server: LiveServer, token: str, data: bytes) -> tuple[float, float]:
    """A complete write that must succeed; returns how long sending the body took, and then the answer."""
    started = time.monotonic()
    sender = Upload(server, token, data)
    sender.start()
    sender.wait_for(sender.body_sent)
    body_done = time.monotonic()
    sender.join()
    assert sender.error is None and sender.status == 200, (sender.status, sender.error)
    return body_done - started, time.monotonic() - body_done


def read_state(server: LiveServer, token: str, context: str = "") -> bytes:
    """GET the current state; checks the status, that the body is complete and that ``Content-MD5`` describes it."""
    with requests.Session() as session:
        try:
            reply = session.get(server.url + PATH, auth=("crash", token), timeout=60)
        except requests.exceptions.ChunkedEncodingError as exc:
            pytest.fail(f"{context}: the served state was cut off mid-body (a corrupt or partial object?): {exc}")
        data = reply.content
        assert reply.status_code == 200, (context, reply.status_code, data[:500])
        assert int(reply.headers["Content-Length"]) == len(data), context
        assert reply.headers["Content-MD5"] == content_md5(data), f"{context}: Content-MD5 does not match the body"
    return data


def download_current(server: LiveServer, target: Path) -> bytes:
    """The current version's bytes through the ``flask versions download`` admin command."""
    server.flask("versions", "download", "--org", "acme", "--workspace", "crash", "-o", str(target))
    return target.read_bytes()


def stored_objects(server: LiveServer) -> tuple[list[Path], list[Path]]:
    """Complete objects and leftover temp files in the fs storage directory."""
    root = server.data_dir / "states"
    files = [p for p in root.rglob("*") if p.is_file()]
    return [p for p in files if p.suffix == ".tfstate"], [p for p in files if p.name.endswith(".part")]


def version_ids(server: LiveServer) -> tuple[set[str], str]:
    """All version ids of the workspace and the current one, from ``flask versions list``."""
    lines = server.flask("versions", "list", "--org", "acme", "--workspace", "crash").stdout.splitlines()
    ids = {line[2:].split("\t")[0] for line in lines}
    current = [line[2:].split("\t")[0] for line in lines if line.startswith("*")]
    assert len(current) == 1, lines
    return ids, current[0]


def write_until(
    mode: str, fraction: float, server: LiveServer, token: str, data: bytes, answering: float
) -> tuple[Upload, str]:
    """Start writing ``data`` and return once the kill point is reached, with a description of that point.

    ``body``: after ``fraction`` of the body left the client. ``answer``: ``fraction`` of the last measured
    answer time (validation, encryption, storage, commit) after the body. ``object``: once the object being
    stored (a new file in the storage directory) holds ``fraction`` of the state's size.
    """
    if mode == "body":
        sender = Upload(server, token, data, trigger_at=int(len(data) * fraction))
        sender.start()
        sender.wait_for(sender.reached)
        return sender, f"at {100 * sender.trigger_at // len(data)}% of the body"
    sender = Upload(server, token, data)
    if mode == "answer":
        sender.start()
        sender.wait_for(sender.body_sent)
        time.sleep(answering * fraction)
        return sender, f"{answering * fraction:.2f}s after the body"
    known = {p for p, _ in files_in_storage(server)}
    target = int(len(data) * fraction)
    sender.start()
    while sender.is_alive():
        growing = [size for path, size in files_in_storage(server) if path not in known]
        if growing and max(growing) >= target:
            return sender, f"at {100 * max(growing) // len(data)}% of the stored object"
        time.sleep(0.002)
    return sender, f"after the write (aiming at {100 * fraction:.0f}% of the stored object)"


def files_in_storage(server: LiveServer) -> list[tuple[Path, int]]:
    """Every file under the fs storage directory with its current size (files may vanish while we look)."""
    found = []
    for path in (server.data_dir / "states").rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            found.append((path, path.stat().st_size))
    return found


@pytest.fixture
def crash_server(tmp_path: Path) -> Iterator[LiveServer]:
    """Two workers, not four: the test restarts the server after every kill and only needs a master with workers."""
    server = start_server(tmp_path / "server", workers=2)
    yield server
    server.stop()


def test_kill_9_during_large_writes_leaves_old_or_new_state(crash_server: LiveServer, tmp_path: Path) -> None:
    server = crash_server
    seed = int(os.environ.get("CRASH_SEED") or time.time())
    rng = random.Random(seed)
    token = server.create_token("acme", None)  # an organization token: storage, not RBAC, is under test
    states = States()
    sending, answering = upload(server, token, states(1))
    first_upload = sending + answering
    acked = 1
    history: list[str] = []
    restarts = 0.0
    started = time.monotonic()
    for kill in range(KILLS):
        writing = acked + 1
        data = states(writing)
        mode = MODES[kill % len(MODES)]
        fraction = (kill // len(MODES) + rng.random()) / math.ceil(KILLS / len(MODES))  # stratified per mode
        sender, when = write_until(mode, fraction, server, token, data, answering)
        server.kill()
        sender.join(timeout=60)
        assert not sender.is_alive()
        if sender.status is not None:
            assert sender.status == 200, f"kill {kill} {when}: the write answered {sender.status}"
            acked = writing
        restart = time.monotonic()
        server.start()
        restarts += time.monotonic() - restart

        served = read_state(server, token, f"kill {kill} {when} (seed {seed})")
        old, new = states(writing - 1), data
        # Plain booleans in the asserts: pytest would otherwise render a diff of two 50 MB documents.
        exact = served in (old, new)
        assert exact, (
            f"kill {kill} {when} (seed {seed}): served {len(served)} bytes, neither the old state "
            f"({len(old)} bytes, serial {writing - 1}) nor the new one ({len(new)} bytes, serial {writing})"
        )
        current = writing if served == new else writing - 1
        assert current >= acked, f"kill {kill} {when}: a write acknowledged with 200 (serial {acked}) was lost"
        history.append(f"{when}: {'new' if current == writing else 'old'}{' (200)' if sender.status else ''}")
        if kill == KILLS - 1:  # the admin CLI reads the same version through its own process
            downloaded = download_current(server, tmp_path / "download.tfstate")
            same = downloaded == served
            assert same, f"the admin CLI's download differs from GET ({len(downloaded)} bytes)"
            _, current_id = version_ids(server)
            objects, _ = stored_objects(server)
            assert current_id in {p.stem for p in objects}, "the current version's object is not a complete file"

        acked = current + 1  # the next write must land: no stuck lock, no stuck pointer
        _, answering = upload(server, token, states(acked))

    final = read_state(server, token) == states(acked)
    assert final, f"the last acknowledged state (serial {acked}) is not the one served"
    ids, _ = version_ids(server)
    objects, temps = stored_objects(server)
    orphans = [p for p in objects if p.stem not in ids]
    print(
        f"\ncrash safety: {KILLS} kill -9 during writes of ~{SIZES[1] >> 20} MB in {time.monotonic() - started:.1f}s "
        f"(restarts {restarts:.1f}s; first upload {first_upload:.2f}s; seed {seed}); {len(ids)} versions, "
        f"{len(orphans)} orphan objects, {len(temps)} leftover .part files on disk; after each kill:\n  "
        + "\n  ".join(history)
    )
