"""Each workspace rule, once per API, through the HTTP surface: the rule lives in one place, every door obeys it.

The rules: a locked workspace is not deleted (unless the request carries the holder's lock id); a forced write needs
delete permission; an outputs-only caller reads the outputs and never the resources; creating an organization, a
workspace or a member is audited whatever the door (API, CLI). Plus the resolution step itself: one read of the
permission store per request, however many permission questions the request asks.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.models import AuditEvent
from app.repositories import orgs, rbac, users
from tests.factories import basic, bearer, lock_info, make_token

API_KINDS = ("http_backend", "tfc_api", "management_api")
JSONAPI = "application/vnd.api+json"


def state(serial: int, lineage: str = "rules", resources: int = 0) -> bytes:
    return json.dumps(
        {
            "version": 4,
            "terraform_version": "1.11.4",
            "serial": serial,
            "lineage": lineage,
            "outputs": {"endpoint": {"value": "https://example.test", "type": "string"}},
            "resources": [
                {"mode": "managed", "type": "null_resource", "name": f"r{i}", "provider": "x", "instances": []}
                for i in range(resources)
            ],
        }
    ).encode()


class Door:
    """One API's way of doing the few things the rules are about, for one token."""

    def __init__(self, kind: str, client: FlaskClient, token: str) -> None:
        self.kind, self.client, self.token = kind, client, token

    def _tfc(self, method: str, path: str, body: Any = None) -> TestResponse:
        data = b"" if body is None else json.dumps(body).encode()
        headers = {**bearer(self.token), "Content-Type": JSONAPI}
        return self.client.open(f"/api/v2/{path}", method=method, data=data, headers=headers)

    def workspace_id(self, name: str) -> str:
        response = self._tfc("GET", f"organizations/acme/workspaces/{name}")
        assert response.status_code == 200, response.data
        return str(response.json["data"]["id"])

    def write(self, name: str, body: bytes, *, force: bool = False) -> TestResponse:
        query = {"force": "true"} if force else {}
        if self.kind == "http_backend":
            return self.client.post(f"/state/acme/{name}", data=body, headers=basic(self.token), query_string=query)
        if self.kind == "management_api":
            return self.client.post(
                f"/v1/units/{name}/upload", data=body, headers=bearer(self.token), query_string=query
            )
        workspace_id = self.workspace_id(name)
        attributes = {
            "serial": json.loads(body)["serial"],
            "md5": hashlib.md5(body).hexdigest(),
            "lineage": json.loads(body)["lineage"],
            "state": base64.b64encode(body).decode(),
            "force": force,
        }
        locked = self._tfc("POST", f"workspaces/{workspace_id}/actions/lock", {"reason": "test"})
        assert locked.status_code == 200, locked.data
        try:
            return self._tfc(
                "POST",
                f"workspaces/{workspace_id}/state-versions",
                {"data": {"type": "state-versions", "attributes": attributes}},
            )
        finally:
            self._tfc("POST", f"workspaces/{workspace_id}/actions/unlock")

    def read(self, name: str) -> bytes:
        """The state bytes this caller gets for the workspace's current version."""
        if self.kind == "http_backend":
            response = self.client.get(f"/state/acme/{name}", headers=basic(self.token))
        elif self.kind == "management_api":
            response = self.client.get(f"/v1/units/{name}/download", headers=bearer(self.token))
        else:
            current = self._tfc("GET", f"workspaces/{self.workspace_id(name)}/current-state-version")
            assert current.status_code == 200, current.data
            url = current.json["data"]["attributes"]["hosted-state-download-url"]
            signed = urlsplit(url)
            response = self.client.get(f"{signed.path}?{signed.query}")
        assert response.status_code == 200, response.data
        return response.data

    def delete(self, name: str, lock_id: str | None = None) -> TestResponse:
        if self.kind == "http_backend":
            query = {"ID": lock_id} if lock_id else {}
            return self.client.delete(f"/state/acme/{name}", headers=basic(self.token), query_string=query)
        if self.kind == "management_api":
            query = {"if_locked_by": lock_id} if lock_id else {}
            return self.client.delete(f"/v1/units/{name}", headers=bearer(self.token), query_string=query)
        return self._tfc("DELETE", f"workspaces/{self.workspace_id(name)}")

    def create(self, name: str) -> TestResponse:
        if self.kind == "http_backend":  # the http backend creates a workspace on its first lock
            return self.client.open(
                f"/state/acme/{name}", method="LOCK", data=lock_info("c1"), headers=basic(self.token)
            )
        if self.kind == "management_api":
            return self.client.post("/v1/units", json={"name": name}, headers=bearer(self.token))
        body = {"data": {"type": "workspaces", "attributes": {"name": name}}}
        return self._tfc("POST", "organizations/acme/workspaces", body)


@pytest.fixture(params=API_KINDS)
def door_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def admin(app: Flask) -> str:
    return make_token(app)


def door(kind: str, client: FlaskClient, token: str) -> Door:
    return Door(kind, client, token)


def custom_role(app: Flask, subject: str, actions: list[str]) -> str:
    """A token for ``subject`` whose only role allows ``actions`` on every workspace of acme."""
    token = make_token(app, subject=subject, role=None)
    with app.app_context():
        org = orgs.require_org("acme")
        role = rbac.create_role(org, f"{subject}-role", "test")
        rules = [{"actions": actions, "resources": ["*"], "effect": "allow"}]
        permission = rbac.create_permission(org, f"{subject}-permission", rules, "test")
        rbac.attach_permission(org, role, permission, "test")
        user = users.get_user_by_subject(subject)
        assert user is not None
        rbac.assign_role(org, user, role, "test")
    return token


def seed(client: FlaskClient, admin: str, name: str = "app", resources: int = 0) -> None:
    response = client.post(f"/state/acme/{name}", data=state(1, resources=resources), headers=basic(admin))
    assert response.status_code == 200, response.data


def lock_over_http(client: FlaskClient, admin: str, name: str, lock_id: str) -> None:
    response = client.open(f"/state/acme/{name}", method="LOCK", data=lock_info(lock_id), headers=basic(admin))
    assert response.status_code == 200, response.data


def events(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        from app.extensions import db

        return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))


# --- delete while locked ------------------------------------------------------------------------------------------


def test_a_locked_workspace_is_not_deleted(app: Flask, client: FlaskClient, admin: str, door_kind: str) -> None:
    seed(client, admin)
    lock_over_http(client, admin, "app", "held-1")
    refused = door(door_kind, client, admin).delete("app")
    assert refused.status_code in (409, 423) and b"held-1" in refused.data
    assert client.get("/state/acme/app", headers=basic(admin)).status_code == 200


@pytest.mark.parametrize("kind", ["http_backend", "management_api"])
def test_the_lock_holder_may_delete_with_its_lock_id(app: Flask, client: FlaskClient, admin: str, kind: str) -> None:
    seed(client, admin)
    lock_over_http(client, admin, "app", "held-2")
    assert door(kind, client, admin).delete("app", lock_id="someone-else").status_code == 409
    assert door(kind, client, admin).delete("app", lock_id="held-2").status_code == 200
    assert client.get("/state/acme/app", headers=basic(admin)).status_code == 404


# --- the force override needs delete permission --------------------------------------------------------------------


def test_a_forced_write_needs_delete_permission(app: Flask, client: FlaskClient, admin: str, door_kind: str) -> None:
    seed(client, admin)
    writer = door(door_kind, client, custom_role(app, "wendy", ["unit.read", "unit.write", "unit.lock"]))
    refused = writer.write("app", state(1, lineage="other"), force=True)
    assert refused.status_code == 403, refused.data
    assert b"unit.delete" in refused.data
    deleter = door(door_kind, client, custom_role(app, "dora", ["unit.read", "unit.write", "unit.lock", "unit.delete"]))
    forced = deleter.write("app", state(1, lineage="other"), force=True)
    assert forced.status_code in (200, 201), forced.data


# --- outputs-only callers read outputs, never resources ------------------------------------------------------------


def test_outputs_only_callers_get_the_outputs_without_resources(
    app: Flask, client: FlaskClient, admin: str, door_kind: str
) -> None:
    seed(client, admin, resources=2)
    consumer = door(door_kind, client, make_token(app, subject="olga", scope="outputs-only"))
    document = json.loads(consumer.read("app"))
    assert document["resources"] == []
    assert document["outputs"]["endpoint"]["value"] == "https://example.test"
    assert document["serial"] == 1 and document["lineage"] == "rules"
    full = json.loads(door(door_kind, client, admin).read("app"))
    assert len(full["resources"]) == 2


# --- creation is audited whatever the door -------------------------------------------------------------------------


def test_creating_a_workspace_is_audited_once(app: Flask, client: FlaskClient, admin: str, door_kind: str) -> None:
    created = door(door_kind, client, admin).create("fresh")
    assert created.status_code in (200, 201), created.data
    recorded = [e for e in events(app, "workspace.create") if e.workspace_name == "fresh"]
    assert len(recorded) == 1 and recorded[0].actor == "alice"


def test_creating_organizations_and_members_is_audited_from_the_cli(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["orgs", "create", "globex"]).exit_code == 0
    assert runner.invoke(args=["users", "create", "carol", "--org", "globex"]).exit_code == 0
    assert [e.detail.get("name") for e in events(app, "org.create")] == ["globex"]
    assert [e.detail.get("subject") for e in events(app, "member.add")] == ["carol"]


# --- one resolution per request ------------------------------------------------------------------------------------


@pytest.fixture
def count_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often a request reads the organization's permission data (membership, grants)."""
    from app.auth import access

    counts = {"resolutions": 0, "grants": 0}

    def counted(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(access, "_load", counted("resolutions", access._load))
    monkeypatch.setattr(access.rbac_repo, "grants_for_member", counted("grants", access.rbac_repo.grants_for_member))
    return counts


def test_a_state_write_resolves_once(app: Flask, client: FlaskClient, count_reads: dict[str, int]) -> None:
    token = custom_role(app, "wendy", ["unit.read", "unit.write", "unit.lock", "unit.delete"])
    seed(client, make_token(app, subject="alice"))
    count_reads.update(resolutions=0, grants=0)
    forced = client.post("/state/acme/app", data=state(2), headers=basic(token), query_string={"force": "true"})
    assert forced.status_code == 200, forced.data
    assert count_reads == {"resolutions": 1, "grants": 1}


def test_a_tfc_workspace_get_resolves_once(app: Flask, client: FlaskClient, count_reads: dict[str, int]) -> None:
    token = custom_role(app, "rita", ["unit.read", "unit.lock"])
    seed(client, make_token(app, subject="alice"))
    count_reads.update(resolutions=0, grants=0)
    headers = {**bearer(token), "Content-Type": JSONAPI}
    shown = client.get("/api/v2/organizations/acme/workspaces/app", headers=headers)
    assert shown.status_code == 200, shown.data
    permissions = shown.json["data"]["attributes"]["permissions"]
    assert permissions["can-lock"] is True and permissions["can-update"] is False  # many questions, one read
    assert count_reads == {"resolutions": 1, "grants": 1}


def test_a_lock_that_would_be_refused_creates_nothing(app: Flask, client: FlaskClient) -> None:
    """The http backend creates a workspace on its first lock, but only after every permission it needs is checked."""
    writer = custom_role(app, "wendy", ["unit.read", "unit.write"])  # may write, may not lock
    refused = client.open("/state/acme/fresh", method="LOCK", data=lock_info("l1"), headers=basic(writer))
    assert refused.status_code == 403, refused.data
    assert not [e for e in events(app, "workspace.create") if e.workspace_name == "fresh"]
    assert client.get("/state/acme/fresh", headers=basic(make_token(app))).status_code == 404


def test_a_rollback_is_a_forced_write_through_every_door(app: Flask, client: FlaskClient) -> None:
    admin = make_token(app)
    seed(client, admin)
    assert client.post("/state/acme/app", data=state(2), headers=basic(admin)).status_code == 200
    first = client.get("/v1/units/app/versions", headers=bearer(admin)).json["versions"][-1]["id"]
    for subject, actions, allowed in (
        ("wendy", ["unit.read", "unit.write", "unit.lock"], False),
        ("dora", ["unit.read", "unit.write", "unit.lock", "unit.delete"], True),
    ):
        token = custom_role(app, subject, actions)
        restored = client.post("/v1/units/app/restore", json={"version_id": first}, headers=bearer(token))
        assert restored.status_code == (200 if allowed else 403), restored.data
        tfc = Door("tfc_api", client, token)
        workspace_id = tfc.workspace_id("app")
        assert tfc._tfc("POST", f"workspaces/{workspace_id}/actions/lock", {"reason": "rollback"}).status_code == 200
        body = {
            "data": {"relationships": {"rollback-state-version": {"data": {"type": "state-versions", "id": first}}}}
        }
        rolled = tfc._tfc("PATCH", f"workspaces/{workspace_id}/state-versions", body)
        assert rolled.status_code == (200 if allowed else 403), rolled.data
        assert tfc._tfc("POST", f"workspaces/{workspace_id}/actions/unlock").status_code == 200
