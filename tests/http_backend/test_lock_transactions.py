"""With its lock table in the metadata database, a lock change and its audit event are one transaction: a LOCK or
UNLOCK whose event cannot be written changes nothing, each costs one commit, and no lock read or change takes a
second connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db, drivers
from app.repositories import locks as lock_repository
from tests.conftest import metadata_backends
from tests.factories import basic, make_token

# MySQL keeps the lock in a transaction of its own (``SqlLockDriver.shares_metadata_database`` says why).
pytestmark = pytest.mark.parametrize("database_url", metadata_backends("sqlite", "postgres"), indirect=True)

LOCK_A = json.dumps({"ID": "a", "Operation": "OperationTypeApply", "Who": "alice@host"})
LOCK_B = json.dumps({"ID": "b", "Operation": "OperationTypeApply", "Who": "bob@host"})


@pytest.fixture
def token(app: Flask) -> str:
    with app.app_context():
        assert drivers().locks.shares_metadata_database
    return make_token(app)


def _lock(client: FlaskClient, token: str, body: str) -> int:
    return client.open("/state/acme/app", method="LOCK", data=body, headers=basic(token)).status_code


def _unlock(client: FlaskClient, token: str, body: str) -> int:
    return client.open("/state/acme/app", method="UNLOCK", data=body, headers=basic(token)).status_code


def test_a_lock_whose_audit_event_fails_is_not_taken(
    app: Flask, client: FlaskClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_repository, "record_event", _failing_audit)
    assert _lock(client, token, LOCK_A) >= 500
    monkeypatch.undo()
    assert _lock(client, token, LOCK_B) == 200


def test_an_unlock_whose_audit_event_fails_keeps_the_lock(
    app: Flask, client: FlaskClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _lock(client, token, LOCK_A) == 200
    monkeypatch.setattr(lock_repository, "record_event", _failing_audit)
    assert _unlock(client, token, LOCK_A) >= 500
    monkeypatch.undo()
    assert _lock(client, token, LOCK_B) == 423


def _failing_audit(*_args: Any, **_kwargs: Any) -> None:
    """The audit insert fails, as it would when the metadata database refuses the write."""
    raise sa.exc.OperationalError("INSERT INTO audit_events", {}, Exception("disk full"))


@pytest.fixture
def commits(app: Flask) -> Iterator[list[str]]:
    """The transactions committed from now on, by engine: ``metadata`` or ``locks``."""
    seen: list[str] = []
    with app.app_context():
        engines = {"metadata": db.engine, "locks": drivers().locks.engine}
    listeners = [(engine, lambda _conn, name=name: seen.append(name)) for name, engine in engines.items()]
    for engine, listener in listeners:
        sa.event.listen(engine, "commit", listener)
    yield seen
    for engine, listener in listeners:
        sa.event.remove(engine, "commit", listener)


def test_a_lock_and_an_unlock_each_commit_once_on_the_metadata_database(
    client: FlaskClient, token: str, commits: list[str]
) -> None:
    assert _lock(client, token, LOCK_A) == 200  # creates the workspace
    commits.clear()
    assert _unlock(client, token, LOCK_A) == 200
    assert _lock(client, token, LOCK_A) == 200
    assert commits == ["metadata", "metadata"]


@pytest.fixture
def lock_engine_checkouts(app: Flask) -> Iterator[list[object]]:
    """The connections taken from the lock driver's own pool from now on."""
    seen: list[object] = []
    with app.app_context():
        engine = drivers().locks.engine

    def note(connection: object, *_args: object) -> None:
        seen.append(connection)

    sa.event.listen(engine, "checkout", note)
    yield seen
    sa.event.remove(engine, "checkout", note)


def test_lock_reads_and_changes_take_no_connection_of_the_drivers_own(
    app: Flask, client: FlaskClient, token: str, lock_engine_checkouts: list[object]
) -> None:
    state = json.dumps({"version": 4, "serial": 1, "lineage": "one", "outputs": {}, "resources": []})
    assert _lock(client, token, LOCK_A) == 200
    assert client.post("/state/acme/app?ID=a", data=state, headers=basic(token)).status_code == 200
    tfc = client.get("/api/v2/organizations/acme/workspaces/app", headers={"Authorization": f"Bearer {token}"})
    assert tfc.status_code == 200 and tfc.json["data"]["attributes"]["locked"] is True
    listed = client.get("/api/v2/organizations/acme/workspaces", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200 and listed.json["data"][0]["attributes"]["locked"] is True
    assert _unlock(client, token, LOCK_A) == 200
    assert lock_engine_checkouts == []
