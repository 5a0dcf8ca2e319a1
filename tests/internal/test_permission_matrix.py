"""One permission check behind every API: the same profiles through the http backend, the internal API (webhook),
the /v1 door (tokens) and, when present, the TFC API.

Profiles: reader (role default), outputs-only (a role with unit.read_outputs, and an outputs-only token), writer,
admin, a deny rule on prod-*, and a token narrowed to one workspace.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from tests.factories import basic, bearer, lock_info
from tests.internal.conftest import Ui, join, state, token_for

TFC_PRESENT = (Path(__file__).resolve().parents[2] / "app" / "tfc_api" / "__init__.py").exists()
LOCK_INFO = lock_info("matrix-lock", "t", created="2026-01-01T00:00:00Z")


@dataclass
class World:
    app: Flask
    client: FlaskClient
    admin: Ui
    units: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    serial: itertools.count = field(default_factory=lambda: itertools.count(10))

    def ui(self, user: str) -> Ui:
        return self.admin.as_user(user)

    # --- the http backend -------------------------------------------------------------------------------------
    def http_read(self, token: str, workspace: str) -> int:
        return self.client.get(f"/state/acme/{workspace}", headers=basic(token)).status_code

    def http_write(self, token: str, workspace: str) -> int:
        return self.client.post(
            f"/state/acme/{workspace}", data=state(next(self.serial)), headers=basic(token)
        ).status_code

    def http_lock(self, token: str, workspace: str) -> int:
        status = self.client.open(
            f"/state/acme/{workspace}", method="LOCK", data=LOCK_INFO, headers=basic(token)
        ).status_code
        if status == 200:
            self.client.open(f"/state/acme/{workspace}", method="UNLOCK", data=LOCK_INFO, headers=basic(token))
        return status

    def http_delete(self, token: str, workspace: str) -> int:
        return self.client.delete(f"/state/acme/{workspace}", headers=basic(token)).status_code

    # --- the management API, either door ----------------------------------------------------------------------
    def v1(self, token: str, method: str, path: str, body: object = None, data: bytes | None = None) -> object:
        payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
        return self.client.open(
            f"/v1{path}", method=method, data=payload, headers={**bearer(token), "Content-Type": "application/json"}
        )


@pytest.fixture
def world(app: Flask, client: FlaskClient, acme: Ui) -> World:
    units = {}
    for name in ("dev", "prod-eu", "scratch"):
        units[name] = acme.post("/units", {"name": name}).json["id"]
        assert acme.post(f"/units/{name}/upload", data=state(1)).status_code == 200
    acme.post(
        "/rbac/permissions",
        {
            "name": "write-all",
            "rules": [{"actions": ["unit.read", "unit.write", "unit.lock"], "resources": ["*"], "effect": "allow"}],
        },
    )
    acme.post(
        "/rbac/permissions",
        {"name": "outputs", "rules": [{"actions": ["unit.read_outputs"], "resources": ["*"], "effect": "allow"}]},
    )
    acme.post(
        "/rbac/permissions",
        {"name": "no-prod", "rules": [{"actions": ["*"], "resources": ["prod-*"], "effect": "deny"}]},
    )
    acme.post("/rbac/roles", {"name": "writer", "permissions": ["write-all"]})
    acme.post("/rbac/roles", {"name": "consumer", "permissions": ["outputs"]})
    acme.post("/rbac/roles", {"name": "restricted", "permissions": ["read", "no-prod"]})
    for user, role in (("reader", None), ("writer", "writer"), ("consumer", "consumer"), ("restricted", "restricted")):
        join(acme, user, role)
    found = World(app, client, acme, units)
    for user in ("alice", "reader", "writer", "consumer", "restricted"):
        found.tokens[user] = token_for(app, "acme", user)
    found.tokens["alice-outputs"] = token_for(app, "acme", "alice", scope="outputs-only")
    found.tokens["alice-read-only"] = token_for(app, "acme", "alice", scope="read-only")
    found.tokens["alice-dev"] = token_for(app, "acme", "alice", workspace="dev")
    return found


def assert_outputs_only(body: bytes) -> None:
    document = json.loads(body)
    assert document["resources"] == []
    assert document["outputs"]["greeting"]["value"] == "hello"
    assert document["serial"] >= 1 and document["lineage"] == "lineage-1"


def test_reader(world: World) -> None:
    token, ui = world.tokens["reader"], world.ui("reader")
    assert world.http_read(token, "dev") == 200
    assert world.http_write(token, "dev") == 403
    assert world.http_lock(token, "dev") == 403
    assert world.http_delete(token, "dev") == 403
    assert world.http_write(token, "brand-new") == 403  # creating a workspace is a write on its name
    for door in (
        lambda m, p, b=None, d=None: ui.call(m, p, b, data=d),
        lambda m, p, b=None, d=None: world.v1(token, m, p, b, d),
    ):
        assert door("GET", "/units/dev").status_code == 200
        assert json.loads(door("GET", "/units/dev/download").data)["resources"] != []
        assert door("GET", "/units/dev/versions").status_code == 200
        assert door("POST", "/units/dev/upload", d=state(99)).status_code == 403
        assert door("POST", "/units/dev/lock").status_code == 403
        assert door("DELETE", "/units/dev").status_code == 403
        assert door("POST", "/units", {"name": "new-one"}).status_code == 403
        assert door("GET", "/rbac/roles").status_code == 403
        assert [u["name"] for u in door("GET", "/units").json["units"]] == ["dev", "prod-eu", "scratch"]


def test_outputs_only_role_and_token(world: World) -> None:
    for token in (world.tokens["consumer"], world.tokens["alice-outputs"]):
        response = world.client.get("/state/acme/dev", headers=basic(token))
        assert response.status_code == 200
        assert_outputs_only(response.data)
        assert world.http_write(token, "dev") == 403
        assert world.http_lock(token, "dev") == 403
        download = world.v1(token, "GET", "/units/dev/download")
        assert download.status_code == 200
        assert_outputs_only(download.data)
        assert world.v1(token, "GET", "/units/dev/versions").status_code == 403
        assert world.v1(token, "POST", "/units/dev/restore", {"version_id": "x"}).status_code == 403
    ui = world.ui("consumer")
    assert ui.get("/units/dev").status_code == 200
    assert_outputs_only(ui.get("/units/dev/download").data)
    assert ui.post("/units/dev/upload", data=state(99)).status_code == 403


def test_read_only_token_of_an_admin(world: World) -> None:
    token = world.tokens["alice-read-only"]
    assert world.http_read(token, "prod-eu") == 200
    assert world.http_write(token, "dev") == 403
    assert world.v1(token, "POST", "/units/dev/lock").status_code == 403
    assert world.v1(token, "GET", "/rbac/roles").status_code == 403


def test_writer(world: World) -> None:
    token, ui = world.tokens["writer"], world.ui("writer")
    assert world.http_read(token, "prod-eu") == 200
    assert world.http_write(token, "dev") == 200
    assert world.http_lock(token, "dev") == 200
    assert world.http_delete(token, "dev") == 403
    assert world.http_write(token, "created-by-writer") == 200
    assert ui.post("/units/dev/upload", data=state(next(world.serial))).status_code == 200
    assert ui.post("/units/dev/lock", {"id": "w1"}).status_code == 200
    assert ui.delete("/units/dev/unlock", {"id": "w1"}).status_code == 200
    assert world.v1(token, "POST", "/units", {"name": "from-v1"}).status_code == 201
    assert world.v1(token, "DELETE", "/units/dev").status_code == 403
    assert world.v1(token, "GET", "/rbac/roles").status_code == 403
    assert ui.get("/audit").status_code == 403
    assert ui.get("/audit?unit=dev").status_code == 200


def test_admin(world: World) -> None:
    token, ui = world.tokens["alice"], world.admin
    assert world.http_write(token, "prod-eu") == 200
    assert world.http_lock(token, "prod-eu") == 200
    assert world.http_delete(token, "scratch") == 200
    assert ui.get("/rbac/roles").status_code == 200
    assert world.v1(token, "GET", "/rbac/roles").status_code == 200
    assert world.v1(token, "GET", "/audit").status_code == 200
    assert world.v1(token, "DELETE", "/units/prod-eu").status_code == 200


def test_deny_rule_on_prod(world: World) -> None:
    token, ui = world.tokens["restricted"], world.ui("restricted")
    assert world.http_read(token, "dev") == 200
    assert world.http_read(token, "prod-eu") == 403
    assert world.http_read(token, "prod-new") == 403
    assert world.client.get(f"/v1/backend/{world.units['prod-eu']}", headers=basic(token)).status_code == 403
    assert world.client.get(f"/v1/backend/{world.units['dev']}", headers=basic(token)).status_code == 200
    for door in (lambda m, p: ui.call(m, p), lambda m, p: world.v1(token, m, p)):
        assert door("GET", "/units/dev").status_code == 200
        assert door("GET", "/units/prod-eu").status_code == 403
        assert door("GET", f"/units/{world.units['prod-eu']}").status_code == 403
        assert door("GET", "/units/prod-eu/download").status_code == 403
        assert door("GET", "/units/prod-missing").status_code == 403  # the same answer whether it exists or not
        assert [u["name"] for u in door("GET", "/units").json["units"]] == ["dev", "scratch"]
    assert ui.get("/audit?unit=prod-eu").status_code == 403


def test_token_narrowed_to_one_workspace(world: World) -> None:
    token = world.tokens["alice-dev"]
    assert world.http_read(token, "dev") == 200
    assert world.http_write(token, "dev") == 200
    assert world.http_read(token, "prod-eu") == 403
    assert world.http_write(token, "other") == 403
    assert world.client.get(f"/v1/backend/{world.units['dev']}", headers=basic(token)).status_code == 200
    assert world.client.get(f"/v1/backend/{world.units['prod-eu']}", headers=basic(token)).status_code == 403
    assert world.v1(token, "GET", f"/units/{world.units['dev']}").status_code == 200
    assert world.v1(token, "GET", "/units/prod-eu").status_code == 403
    assert [u["name"] for u in world.v1(token, "GET", "/units").json["units"]] == ["dev"]
    assert world.v1(token, "GET", "/rbac/roles").status_code == 403
    assert world.v1(token, "POST", "/units", {"name": "sneaky"}).status_code == 403


def test_a_member_without_roles_can_do_nothing(world: World) -> None:
    world.admin.post("/rbac/revoke", {"subject": "reader", "role_id": "default"})
    token = world.tokens["reader"]
    assert world.http_read(token, "dev") == 403
    assert world.v1(token, "GET", "/units").json["units"] == []
    assert world.v1(token, "GET", "/units/dev").status_code == 403


def test_role_changes_apply_at_once(world: World) -> None:
    token = world.tokens["reader"]
    assert world.http_write(token, "dev") == 403
    world.admin.post("/rbac/assign", {"subject": "reader", "role_id": "writer"})
    assert world.http_write(token, "dev") == 200


def test_the_permission_store_failing_closes_every_door(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.repositories import rbac

    def broken(org_id: str, user_id: str) -> list:
        raise OperationalError("SELECT roles", {}, Exception("connection refused"))

    monkeypatch.setattr(rbac, "grants_for_member", broken)
    token = world.tokens["writer"]
    http = world.client.get("/state/acme/dev", headers=basic(token))
    assert http.status_code == 503
    assert "permissions" in http.json["error"]
    assert world.http_write(token, "dev") == 503
    internal = world.ui("writer").get("/units/dev")
    assert internal.status_code == 503
    assert "permissions backend unavailable" in internal.json["error"]
    assert world.v1(token, "GET", "/units/dev").status_code == 503
    assert world.v1(token, "GET", "/units").status_code == 503


@pytest.mark.skipif(not TFC_PRESENT, reason="TFC API not present")
def test_tfc_api_uses_the_same_check(world: World) -> None:
    def tfc(token: str, method: str, path: str, body: object = None) -> int:
        headers = {**bearer(token), "Content-Type": "application/vnd.api+json"}
        return world.client.open(
            f"/api/v2{path}", method=method, headers=headers, data=json.dumps(body) if body is not None else None
        ).status_code

    lock = {"reason": "matrix"}
    dev, prod = world.units["dev"], world.units["prod-eu"]
    assert tfc(world.tokens["reader"], "GET", "/organizations/acme/workspaces/dev") == 200
    assert tfc(world.tokens["reader"], "POST", f"/workspaces/{dev}/actions/lock", lock) == 403
    assert tfc(world.tokens["writer"], "POST", f"/workspaces/{dev}/actions/lock", lock) == 200
    assert tfc(world.tokens["writer"], "POST", f"/workspaces/{dev}/actions/unlock", {}) == 200
    assert tfc(world.tokens["restricted"], "GET", "/organizations/acme/workspaces/dev") == 200
    assert tfc(world.tokens["restricted"], "GET", "/organizations/acme/workspaces/prod-eu") in (403, 404)
    assert tfc(world.tokens["restricted"], "GET", f"/workspaces/{prod}/current-state-version") in (403, 404)
    assert tfc(world.tokens["alice-dev"], "GET", f"/workspaces/{prod}") in (403, 404)
    assert tfc(world.tokens["alice-dev"], "GET", f"/workspaces/{dev}") == 200
    assert tfc(world.tokens["consumer"], "GET", f"/workspaces/{dev}/current-state-version-outputs") == 200


# Who may do what through the token door's self-service endpoints: only a full token of an rbac.manage holder
# adds members (themselves included); nobody creates organizations with a token; everyone sees only acme.
SELF_SERVICE = {
    #                  join self, add other, create org
    "alice": (200, 201, 403),
    "alice-outputs": (403, 403, 403),
    "alice-read-only": (403, 403, 403),
    "alice-dev": (403, 403, 403),
    "reader": (403, 403, 403),
    "writer": (403, 403, 403),
    "consumer": (403, 403, 403),
    "restricted": (403, 403, 403),
}


@pytest.mark.parametrize("profile", sorted(SELF_SERVICE))
def test_self_service_endpoints_of_the_token_door(world: World, profile: str) -> None:
    token = world.tokens[profile]
    subject = profile.split("-")[0]
    join_self, add_other, create_org = SELF_SERVICE[profile]
    assert world.v1(token, "POST", "/users", {"subject": subject}).status_code == join_self
    assert world.v1(token, "POST", "/users", {"subject": f"new-{profile}"}).status_code == add_other
    assert world.v1(token, "POST", "/orgs", {"name": f"org-of-{profile}"}).status_code == create_org
    sync = {"name": "x", "display_name": "x", "external_org_id": f"ext-{profile}"}
    assert world.v1(token, "POST", "/orgs/sync", sync).status_code == 403
    me = world.v1(token, "GET", "/me")
    assert me.status_code == 200 and me.json["subject"] == subject and me.json["organization"]["name"] == "acme"
    assert [org["name"] for org in world.v1(token, "GET", "/orgs").json["organizations"]] == ["acme"]
    assert world.v1(token, "GET", "/users?org=elsewhere").status_code == 404


# A rename needs unit.write on the old and the new name.
RENAMES = {"alice": 200, "writer": 200, "alice-dev": 403, "reader": 403, "consumer": 403, "restricted": 403}


@pytest.mark.skipif(not TFC_PRESENT, reason="TFC API not present")
@pytest.mark.parametrize("profile", sorted(RENAMES))
def test_renames(world: World, profile: str) -> None:
    headers = {**bearer(world.tokens[profile]), "Content-Type": "application/vnd.api+json"}
    body = json.dumps({"data": {"type": "workspaces", "attributes": {"name": "prod-renamed"}}})
    response = world.client.patch("/api/v2/organizations/acme/workspaces/dev", data=body, headers=headers)
    assert response.status_code == RENAMES[profile], response.json
    dev_only = json.dumps({"data": {"type": "workspaces", "attributes": {"name": "dev-renamed"}}})
    if profile == "alice-dev":  # its one workspace may not take another name: the token would lose it
        response = world.client.patch("/api/v2/organizations/acme/workspaces/dev", data=dev_only, headers=headers)
        assert response.status_code == 403
