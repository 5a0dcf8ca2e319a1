"""``flask storage gc``: reports unreferenced objects and stale temporary files, deletes only with ``--delete``,
and never touches a referenced object or anything young enough to belong to a write in flight."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from flask import Flask

from app.extensions import db, drivers
from app.models import StateVersion
from app.repositories.state_versions import object_keys
from tests.factories import basic, make_token

HOUR = 3600


def state(serial: int) -> bytes:
    return json.dumps({"version": 4, "serial": serial, "lineage": "gc", "outputs": {}, "resources": []}).encode()


def age(path: Path, seconds: int) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_gc_reports_then_deletes_exactly_the_old_garbage(app: Flask, config) -> None:
    token = make_token(app)
    client = app.test_client()
    for serial in (1, 2):
        assert client.post("/state/acme/prod", data=state(serial), headers=basic(token)).status_code == 200
    root = config.storage_fs_dir
    with app.app_context():
        referenced = {key for v in db.session.scalars(db.select(StateVersion)) for key in object_keys(v)}
        workspace_id = next(iter(referenced)).split("/")[0]
        storage = drivers().storage
        storage.put(f"{workspace_id}/sv-orphan", [b"no row points here"])  # stored, then the row never committed
        storage.put(f"{workspace_id}/sv-young", [b"a write in flight"])
    for key in referenced:
        age(root / f"{key}.tfstate", 2 * HOUR)  # old, but referenced: never garbage
    age(root / workspace_id / "sv-orphan.tfstate", 2 * HOUR)
    stale = root / workspace_id / ".tmp-killed.part"
    stale.write_bytes(b"half")
    age(stale, 2 * HOUR)
    (root / workspace_id / ".tmp-writing.part").write_bytes(b"now")

    runner = app.test_cli_runner()
    report = runner.invoke(args=["storage", "gc", "-v"])
    assert report.exit_code == 0, report.output
    assert "1 unreferenced object(s) and 1 incomplete write(s) older than 1h: 22 byte(s)" in report.output
    assert "2 younger unreferenced object(s) or incomplete write(s) kept" in report.output
    assert f"object\t{workspace_id}/sv-orphan\t18" in report.output
    assert "nothing deleted" in report.output
    assert (root / workspace_id / "sv-orphan.tfstate").exists() and stale.exists()

    deleted = runner.invoke(args=["storage", "gc", "--delete"])
    assert deleted.exit_code == 0, deleted.output
    assert "deleted 2 item(s), 22 byte(s)" in deleted.output
    assert not (root / workspace_id / "sv-orphan.tfstate").exists() and not stale.exists()
    assert (root / workspace_id / "sv-young.tfstate").exists()
    assert (root / workspace_id / ".tmp-writing.part").exists()
    assert all((root / f"{key}.tfstate").exists() for key in referenced)
    assert client.get("/state/acme/prod", headers=basic(token)).data == state(2)

    again = runner.invoke(args=["storage", "gc", "--grace", "30m"])
    assert "0 unreferenced object(s) and 0 incomplete write(s)" in again.output


def test_gc_refuses_a_zero_grace(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["storage", "gc", "--grace", "0"])
    assert result.exit_code == 1 and "--grace" in result.output
