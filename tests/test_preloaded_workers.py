"""gunicorn loads the app in its master and forks the workers from it (``preload_app``): nothing that holds a
connection crosses the fork. The master closes what it opened while loading, and each worker builds its own."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app import reopen_after_fork
from app.extensions import db, drivers
from tests.factories import basic
from tests.fake_vault import ROOT_TOKEN, FakeVault
from tests.live_server import LiveServer, free_port, server_environment, start_server


def state(serial: int) -> bytes:
    """A minimal Terraform state with ``serial``."""
    return json.dumps({"version": 4, "serial": serial, "lineage": "forked", "outputs": {}, "resources": []}).encode()


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
def test_the_master_keeps_no_database_file_open_and_the_workers_open_their_own(server: LiveServer) -> None:
    auth = basic(server.create_token())
    for _ in range(8):  # new connections each time, so that both workers serve some
        assert (
            requests.post(f"{server.url}/state/acme/prod", data=state(1), headers=auth, timeout=30).status_code == 200
        )
    database = str(server.data_dir / "taco.db")
    assert server.process is not None
    master = server.process.pid  # the launcher execs gunicorn in place
    assert database not in open_files(master)
    workers = children(master)
    assert len(workers) == 2
    assert any(database in open_files(worker) for worker in workers)


@pytest.mark.e2e
@pytest.mark.slow
def test_workers_renew_their_vault_token_themselves(tmp_path: Path) -> None:
    # The master's renewal thread stops when it closes its drivers, and threads do not survive a fork: only
    # clients the workers build for themselves keep a short-lived token alive. The token must outlive the
    # start-up (nobody renews it between the master closing its drivers and the workers starting, seconds on a
    # busy machine), and the test then waits more than twice its lifetime.
    ttl = 12
    with FakeVault() as vault:
        vault.create_transit_key("transit", "states")
        data_dir = tmp_path / "server"
        data_dir.mkdir()
        port = free_port()
        settings = {"KMS_BACKEND": "transit", "KMS_TRANSIT_KEY": "states", "VAULT_ADDR": vault.url}
        env = server_environment(data_dir, port, 2, {**settings, "VAULT_TOKEN": ROOT_TOKEN})
        live = LiveServer(data_dir, port, env, data_dir / "server.log")
        live.flask("db", "upgrade")
        vault.add_token("short-lived", ttl=ttl, renewable=True)
        live.env["VAULT_TOKEN"] = "short-lived"
        live.start()
        try:
            auth = basic(live.create_token())
            url = f"{live.url}/state/acme/prod"
            assert requests.post(url, data=state(1), headers=auth, timeout=30).status_code == 200
            time.sleep(2.5 * ttl)
            for serial in (2, 3, 4, 5):  # new connections: both workers write, each asking Transit for a data key
                assert requests.post(url, data=state(serial), headers=auth, timeout=30).status_code == 200
        finally:
            live.stop()
        assert vault.count("POST", "/v1/auth/token/renew-self") >= 2
