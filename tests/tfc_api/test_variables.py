"""Workspace variables through the TFE API: categories, key rules, write-only sensitive values, permissions."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.extensions import db
from app.models import AuditEvent, WorkspaceVariable
from app.repositories import orgs, rbac, users
from app.repositories.variables import revealed_value
from tests.factories import make_token
from tests.tfc_api.conftest import Api, assert_error


def var(key: str, value: str = "v", category: str = "terraform", **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "vars", "attributes": {"key": key, "value": value, "category": category, **attributes}}}


def test_create_list_show_update_delete(api: Api, workspace: dict[str, Any]) -> None:
    base = f"workspaces/{workspace['id']}/vars"
    made = api.post(base, var("region", "eu-west-1", description="where"))
    assert made.status_code == 201, made.json
    data = made.json["data"]
    assert data["type"] == "vars" and data["id"].startswith("var-")
    assert data["attributes"] | {"created-at": None} == {
        "key": "region",
        "value": "eu-west-1",
        "sensitive": False,
        "category": "terraform",
        "hcl": False,
        "description": "where",
        "created-at": None,
        "version-id": "1",
    }
    assert data["relationships"]["configurable"]["data"] == {"id": workspace["id"], "type": "workspaces"}
    assert api.post(base, var("TF_LOG", "info", "env")).status_code == 201
    assert api.post(base, var("region", "x", "env")).status_code == 201  # another category, the same key
    listed = api.get(base).json["data"]
    assert [(v["attributes"]["category"], v["attributes"]["key"]) for v in listed] == [
        ("env", "TF_LOG"),
        ("env", "region"),
        ("terraform", "region"),
    ]
    change = {"data": {"type": "vars", "attributes": {"value": '["a"]', "hcl": True}}}
    changed = api.patch(f"{base}/{data['id']}", change)
    assert changed.status_code == 200, changed.json
    assert changed.json["data"]["attributes"]["value"] == '["a"]' and changed.json["data"]["attributes"]["hcl"]
    assert changed.json["data"]["attributes"]["version-id"] == "2"
    assert api.get(f"{base}/{data['id']}").json["data"]["attributes"]["key"] == "region"
    assert api.delete(f"{base}/{data['id']}").status_code == 204
    assert_error(api.get(f"{base}/{data['id']}"), 404)


def test_sensitive_values_are_write_only_and_sealed(app: Flask, api: Api, workspace: dict[str, Any]) -> None:
    base = f"workspaces/{workspace['id']}/vars"
    made = api.post(base, var("db_password", "hunter2-marker", sensitive=True))
    assert made.status_code == 201 and made.json["data"]["attributes"]["value"] is None
    variable_id = made.json["data"]["id"]
    assert api.get(base).json["data"][0]["attributes"]["value"] is None
    assert api.get(f"{base}/{variable_id}").json["data"]["attributes"]["value"] is None
    assert b"hunter2-marker" not in api.get(base).data
    assert_error(
        api.patch(f"{base}/{variable_id}", {"data": {"attributes": {"sensitive": False}}}), 400, "non-sensitive"
    )
    assert api.patch(f"{base}/{variable_id}", {"data": {"attributes": {"value": "rotated-marker"}}}).status_code == 200
    with app.app_context():
        stored = db.session.get(WorkspaceVariable, variable_id)
        assert b"rotated-marker" not in stored.sealed_value  # sealed by the KMS driver
        assert revealed_value(stored) == "rotated-marker"  # what a run hands to Terraform
        details = [str(e.detail) for e in db.session.scalars(db.select(AuditEvent))]
        assert not any("marker" in detail for detail in details)


def test_bad_variables_are_refused(api: Api, workspace: dict[str, Any]) -> None:
    base = f"workspaces/{workspace['id']}/vars"
    assert_error(api.post(base, var("1st")), 400, "invalid terraform variable key")
    assert_error(api.post(base, var("has-dash", category="env")), 400, "invalid env variable key")
    assert_error(api.post(base, var("k", category="policy-set")), 400, "category")
    assert_error(api.post(base, {"data": {"attributes": {"value": "v", "category": "env"}}}), 400, "key is required")
    assert_error(api.post(base, var("k", value=3)), 400, "must be a string")  # type: ignore[arg-type]
    assert_error(api.post(base, var("k", "a\u0000b")), 400)
    assert api.post(base, var("dup")).status_code == 201
    assert_error(api.post(base, var("dup")), 409, "already exists")


def test_reading_needs_state_read_and_changing_needs_write(
    app: Flask, client: Any, api: Api, workspace: dict[str, Any]
) -> None:
    base = f"workspaces/{workspace['id']}/vars"
    assert api.post(base, var("region")).status_code == 201
    reader = Api(client, make_token(app, subject="rhea", role="default"))
    assert reader.get(base).status_code == 200
    assert_error(reader.post(base, var("other")), 403)
    outputs_only = Api(client, make_token(app, subject="otto", scope="outputs-only"))
    assert_error(outputs_only.get(base), 403)
    with app.app_context():
        orgs.create_org("globex")
    stranger = Api(client, make_token(app, org="globex", subject="sam"))
    assert_error(stranger.get(base), 404)
    with app.app_context():
        assert users.get_user_by_subject("sam") is not None and rbac.get_role(orgs.require_org("globex"), "admin")
