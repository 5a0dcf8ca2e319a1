"""The TFC API under roles: a rename needs the permission on both names, a workspace the caller may not see answers
exactly like a missing one, and listings count only what the caller may see."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import bearer
from tests.internal.conftest import Ui, join, token_for

TFC = "application/vnd.api+json"


def tfc(client: FlaskClient, token: str, method: str, path: str, body: object = None) -> TestResponse:
    data = json.dumps(body) if body is not None else None
    return client.open(f"/api/v2{path}", method=method, data=data, headers={**bearer(token), "Content-Type": TFC})


def rename(name: str) -> dict:
    return {"data": {"type": "workspaces", "attributes": {"name": name}}}


@pytest.fixture
def units(acme: Ui) -> dict[str, str]:
    """Workspaces dev-app, dev-db, prod-app, prod-db and 30 more dev-NN; bob may read and write only dev-*."""
    ids = {}
    for name in ["dev-app", "dev-db", "prod-app", "prod-db"] + [f"dev-{n:02d}" for n in range(30)]:
        ids[name] = acme.post("/units", {"name": name}).json["id"]
    rules = [{"actions": ["unit.read", "unit.write"], "resources": ["dev-*"], "effect": "allow"}]
    assert acme.post("/rbac/permissions", {"name": "dev-only", "rules": rules}).status_code == 201
    assert acme.post("/rbac/roles", {"name": "dev", "permissions": ["dev-only"]}).status_code == 201
    join(acme, "bob", "dev")
    return ids


def test_a_rename_needs_the_permission_on_the_new_name(
    app: Flask, client: FlaskClient, acme: Ui, units: dict[str, str]
) -> None:
    bob = token_for(app, "acme", "bob")
    by_name = tfc(client, bob, "PATCH", "/organizations/acme/workspaces/dev-app", rename("prod-new"))
    assert by_name.status_code == 403, by_name.json
    by_id = tfc(client, bob, "PATCH", f"/workspaces/{units['dev-app']}", rename("prod-new"))
    assert by_id.status_code == 403
    both = {"data": {"type": "workspaces", "attributes": {"name": "prod-new", "auto-apply": True}}}
    assert tfc(client, bob, "PATCH", "/organizations/acme/workspaces/dev-app", both).status_code == 403
    unchanged = acme.get("/units/dev-app").json
    assert unchanged["name"] == "dev-app" and unchanged["tfe_auto_apply"] is not True  # nothing half-applied
    assert tfc(client, bob, "PATCH", "/organizations/acme/workspaces/dev-app", rename("dev-app2")).status_code == 200
    assert acme.get(f"/units/{units['dev-app']}").json["name"] == "dev-app2"


def test_a_rename_onto_a_taken_name_changes_nothing(
    app: Flask, client: FlaskClient, acme: Ui, units: dict[str, str]
) -> None:
    admin = token_for(app, "acme", "alice")
    body = {"data": {"type": "workspaces", "attributes": {"name": "dev-db", "auto-apply": True}}}
    response = tfc(client, admin, "PATCH", "/organizations/acme/workspaces/dev-app", body)
    assert response.status_code == 409
    unit = acme.get(f"/units/{units['dev-app']}").json
    assert unit["name"] == "dev-app" and unit["tfe_auto_apply"] is not True


def test_invisible_workspaces_answer_like_missing_ones(app: Flask, client: FlaskClient, units: dict[str, str]) -> None:
    bob = token_for(app, "acme", "bob")
    hidden = tfc(client, bob, "GET", "/organizations/acme/workspaces/prod-app")
    missing = tfc(client, bob, "GET", "/organizations/acme/workspaces/prod-nope")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.data.replace(b"prod-app", b"X") == missing.data.replace(b"prod-nope", b"X")
    hidden_id = tfc(client, bob, "GET", f"/workspaces/{units['prod-app']}")
    missing_id = tfc(client, bob, "GET", "/workspaces/ws-AAAAAAAAAAAAAAAA")
    assert hidden_id.status_code == missing_id.status_code == 404
    assert hidden_id.data.replace(units["prod-app"].encode(), b"X") == missing_id.data.replace(
        b"ws-AAAAAAAAAAAAAAAA", b"X"
    )
    for path in (
        f"/workspaces/{units['prod-app']}/current-state-version",
        f"/workspaces/{units['prod-app']}/actions/lock",
    ):
        method = "POST" if path.endswith("lock") else "GET"
        assert tfc(client, bob, method, path, {} if method == "POST" else None).status_code == 404, path
    # a visible workspace still says 403 for what the caller may not do there
    reader = token_for(app, "acme", "bob", scope="read-only")
    assert tfc(client, reader, "POST", f"/workspaces/{units['dev-app']}/actions/lock", {}).status_code == 403


def test_listings_count_only_visible_workspaces(app: Flask, client: FlaskClient, units: dict[str, str]) -> None:
    bob = token_for(app, "acme", "bob")
    first = tfc(client, bob, "GET", "/organizations/acme/workspaces?page[size]=20")
    assert first.status_code == 200
    names = [w["attributes"]["name"] for w in first.json["data"]]
    assert len(names) == 20 and all(name.startswith("dev-") for name in names)
    pagination = first.json["meta"]["pagination"]
    assert pagination["total-count"] == 32 and pagination["total-pages"] == 2
    second = tfc(client, bob, "GET", "/organizations/acme/workspaces?page[size]=20&page[number]=2")
    rest = [w["attributes"]["name"] for w in second.json["data"]]
    assert len(rest) == 12 and not set(rest) & set(names)
    prod = tfc(client, bob, "GET", "/organizations/acme/workspaces?search[name]=prod")
    assert prod.json["data"] == [] and prod.json["meta"]["pagination"]["total-count"] == 0
    admin = tfc(client, token_for(app, "acme", "alice"), "GET", "/organizations/acme/workspaces")
    assert admin.json["meta"]["pagination"]["total-count"] == 34
