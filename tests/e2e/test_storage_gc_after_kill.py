"""``kill -9`` of a real server in the middle of a large state write leaves a temporary file; with an object that
was stored but never got its row, that is exactly what ``flask storage gc`` reports and, with ``--delete``,
removes, while every referenced object stays and the server serves the same state afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.drivers.storage.fs import FilesystemStorage
from tests.live_server import LiveServer, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PATH = "/state/acme/gc"
BIG = 40 * 1024 * 1024
CHUNK = 256 * 1024
TWO_HOURS = 2 * 3600


def state(serial: int, size: int = 0) -> bytes:
    document = {
        "version": 4,
        "serial": serial,
        "lineage": "gc-after-kill",
        "outputs": {},
        "resources": [
            {
                "mode": "managed",
                "type": "null_resource",
                "name": "big",
                "instances": [{"attributes": {"blob": "x" * size}}],
            }
        ],
    }
    return json.dumps(document).encode()


def _streamed(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def _post(server: LiveServer, token: str, data: bytes) -> None:
    with contextlib.suppress(requests.RequestException):  # the server was killed under it
        requests.post(server.url + PATH, data=_streamed(data), auth=("t", token), timeout=120)


def _files(root: Path, pattern: str) -> set[Path]:
    return {p for p in root.rglob(pattern) if p.is_file()}


def _kill_during_store(server: LiveServer, token: str, root: Path, serial: int) -> bool:
    """Send a large write and ``kill -9`` the server once its object is being written; True if a temp file stayed."""
    sender = threading.Thread(target=_post, args=(server, token, state(serial, BIG)), daemon=True)
    sender.start()
    deadline = time.monotonic() + 120
    while sender.is_alive() and time.monotonic() < deadline:
        if any(p.stat().st_size > 0 for p in _files(root, ".tmp-*.part") if p.exists()):
            server.kill()
            break
        time.sleep(0.002)
    server.kill()
    sender.join(timeout=30)
    return bool(_files(root, ".tmp-*.part"))


def _gc(server: LiveServer, *args: str) -> str:
    return server.flask("storage", "gc", "-v", *args).stdout


def test_gc_after_kill_9_removes_exactly_the_leftovers(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", workers=2)
    try:
        root = server.data_dir / "states"
        token = server.create_token("acme", None)
        small = state(1)
        assert requests.post(server.url + PATH, data=small, auth=("t", token), timeout=60).status_code == 200
        referenced = _files(root, "*.tfstate")
        assert len(referenced) == 1

        for attempt in range(2, 6):
            if _kill_during_store(server, token, root, attempt):
                break
            server.start()  # the write finished before the kill landed: try again
        else:
            pytest.fail("never caught the server while it stored the object")

        # what a kill between storing an object and committing its row leaves: written through the driver
        workspace_dir = next(iter(referenced)).parent
        FilesystemStorage(root).put(f"{workspace_dir.name}/sv-orphan", [b"stored, never committed"])
        for path in _files(root, "*"):
            os.utime(path, (time.time() - TWO_HOURS, time.time() - TWO_HOURS))
        temp_files = _files(root, ".tmp-*.part")
        # a kill can also land after the rename and before the commit: such an object is garbage too
        leftovers = (_files(root, "*.tfstate") - referenced) | temp_files
        assert temp_files and root / workspace_dir.name / "sv-orphan.tfstate" in leftovers

        report = _gc(server)
        objects = len(leftovers - temp_files)
        assert f"{objects} unreferenced object(s) and {len(temp_files)} incomplete write(s)" in report, report
        assert "nothing deleted" in report
        assert _files(root, "*") >= leftovers  # a report deletes nothing

        deleted = _gc(server, "--delete")
        assert f"deleted {len(leftovers)} item(s)" in deleted, deleted
        assert _files(root, "*") == referenced  # exactly the leftovers went, every referenced object stayed
        assert "0 unreferenced object(s) and 0 incomplete write(s)" in _gc(server)

        server.start()
        reply = requests.get(server.url + PATH, auth=("t", token), timeout=60)
        assert reply.status_code == 200 and reply.content == small
    finally:
        server.stop()
