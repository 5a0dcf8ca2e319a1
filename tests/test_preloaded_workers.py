"""gunicorn loads the app in its master and forks the workers from it (``preload_app``): nothing that holds a
connection crosses the fork. The master closes what it opened while loading, and each worker builds its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app import reopen_after_fork
from app.extensions import db, drivers
from tests.factories import basic
from tests.live_server import LiveServer, start_server

STATE = b'{"version": 4, "serial": 1, "lineage": "forked", "outputs": {}, "resources": []}'


def test_a_forked_worker_gets_drivers_of_its_own_and_still_serves(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        inherited = drivers()
    reopen_after_fork(app)
    with app.app_context():
        assert drivers() is not inherited
        assert drivers().storage is not inherited.storage and drivers().locks is not inherited.locks
    assert client.get("/healthz").status_code == 200


def test_a_forked_worker_leaves_the_parents_pooled_connections_open(app: Flask) -> None:
    # Closing them would end the parent's database sessions (and, with SQLite, its file locks).
    with app.app_context(), db.engine.connect() as connection:
        parents = connection.connection.dbapi_connection
    assert parents is not None
    reopen_after_fork(app)
    parents.cursor().execute("SELECT 1")


def open_files(pid: int) -> set[str]:
    """What the process's file descriptors point at."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(fd))
        except OSError:
            continue  # closed while we looked
    return found


def children(pid: int) -> list[int]:
    return [int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat") if _parent(stat) == pid]


def _parent(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(tmp_path / "server", workers=2)
    yield live
    live.stop()


@pytest.mark.e2e
def test_the_master_keeps_no_database_file_open_and_each_worker_opens_its_own(server: LiveServer) -> None:
    auth = basic(server.create_token())
    for _ in range(8):  # new connections each time, so that both workers serve some
        assert requests.post(f"{server.url}/state/acme/prod", data=STATE, headers=auth, timeout=30).status_code == 200
    database = str(server.data_dir / "taco.db")
    assert server.process is not None
    master = server.process.pid  # the launcher execs gunicorn in place
    assert database not in open_files(master)
    workers = children(master)
    assert len(workers) == 2
    assert any(database in open_files(worker) for worker in workers)
