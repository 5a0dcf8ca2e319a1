"""The internal door (webhook secret, X-Org-ID, forwarded host), tags, tag-bindings and projects."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extensions import db, drivers
from config import Config
from tests.factories import make_token
from tests.tfc_api.conftest import Api, assert_error

SECRET = "webhook-secret"


@pytest.fixture
def internal_app(config: Config) -> Iterator[Flask]:
    app = create_app(dataclasses.replace(config, internal_webhook_secret=SECRET))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
        drivers().close()


def ui_headers(org: str = "acme", user: str = "alice") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {SECRET}",
        "X-User-ID": user,
        "X-Email": f"{user}@example.com",
        "X-Org-ID": org,
        "X-Forwarded-Host": "ui.example.com",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
    }


def test_internal_door_uses_the_webhook_caller_and_forwarded_host(internal_app: Flask) -> None:
    token = make_token(internal_app)
    make_token(internal_app, "other", "mallory")
    client = internal_app.test_client()
    ui = Api(client, None, prefix="/internal/tfe/api/v2")
    headers = ui_headers()
    assert_error(ui.get("organizations/acme/workspaces"), 401)
    assert_error(ui.get("organizations/acme/workspaces", headers={**headers, "Authorization": "Bearer wrong"}), 403)
    created = ui.post("organizations/acme/workspaces", {"data": {"attributes": {"name": "prod"}}}, headers=headers)
    assert created.status_code == 201, created.json
    workspace_id = created.json["data"]["id"]
    assert ui.get(f"workspaces/{workspace_id}", headers=headers).json["data"]["attributes"]["name"] == "prod"
    assert_error(ui.get("organizations/other/workspaces", headers=headers), 404)
    assert_error(ui.get("organizations/other/workspaces", headers=ui_headers("other")), 404)  # not a member
    ui.post(f"workspaces/{workspace_id}/actions/lock", {"reason": "ui"}, headers=headers)
    pending = ui.post(
        f"workspaces/{workspace_id}/state-versions",
        {"data": {"attributes": {"serial": 1, "md5": "0" * 32}}},
        headers=headers,
    )
    assert pending.status_code == 201, pending.json
    upload = pending.json["data"]["attributes"]["hosted-state-upload-url"]
    assert upload.startswith(f"https://ui.example.com/tfe/api/v2/state-versions/{pending.json['data']['id']}/")
    # the public door with a token sees the same workspace, locked by the UI user
    public = Api(client, token).get(f"workspaces/{workspace_id}").json["data"]
    assert public["attributes"]["locked"] is True


def test_public_base_url_is_used_for_links(config: Config, token: str) -> None:
    app = create_app(dataclasses.replace(config, public_base_url="https://tf.example.com"))
    try:
        api = Api(app.test_client(), make_token(app, subject="zed"))
        workspace = api.create_workspace("prod")
        api.lock(workspace["id"])
        created = api.post(
            f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": {"serial": 1, "md5": "0" * 32}}}
        ).json["data"]
        assert created["attributes"]["hosted-state-upload-url"].startswith("https://tf.example.com/api/v2/")
        tfe = api.get(f"/tfe/api/v2/state-versions/{created['id']}").json["data"]
        assert tfe["id"] == created["id"]
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
            drivers().close()


def test_tags(api: Api, workspace: dict[str, Any]) -> None:
    path = f"workspaces/{workspace['id']}/relationships/tags"
    added = api.post(path, {"data": [{"type": "tags", "attributes": {"name": "app"}}, {"type": "tags", "id": "tag-x"}]})
    assert added.status_code == 204
    listed = api.get(path).json
    assert [t["attributes"]["name"] for t in listed["data"]] == ["app", "x"]
    assert listed["data"][0]["type"] == "tags" and listed["meta"]["pagination"]["total-count"] == 2
    assert api.get(f"workspaces/{workspace['id']}").json["data"]["attributes"]["tag-names"] == ["app", "x"]
    assert api.delete(path, {"data": [{"type": "tags", "attributes": {"name": "x"}}]}).status_code == 204
    assert [t["attributes"]["name"] for t in api.get(path).json["data"]] == ["app"]
    assert_error(api.post(path, {"data": [{"type": "tags", "attributes": {"name": "bad tag!"}}]}), 400, "tags are")
    bindings = api.get(f"workspaces/{workspace['id']}/tag-bindings")
    assert bindings.status_code == 200
    assert [b["attributes"] for b in bindings.json["data"]] == [{"key": "app", "value": ""}]


def test_projects(api: Api, app: Flask, client: FlaskClient, workspace: dict[str, Any]) -> None:
    listed = api.get("organizations/acme/projects").json
    project = listed["data"][0]
    assert project["type"] == "projects" and project["attributes"]["name"] == "Default Project"
    assert project["attributes"]["workspace-count"] == 1
    assert api.get("organizations/acme/projects?filter[names]=infra").json["data"] == []
    assert api.get(f"projects/{project['id']}").json["data"]["id"] == project["id"]
    same = api.post("organizations/acme/projects", {"data": {"attributes": {"name": "Default Project"}}})
    assert same.status_code == 201 and same.json["data"]["id"] == project["id"]
    assert_error(
        api.post("organizations/acme/projects", {"data": {"attributes": {"name": "infra"}}}),
        422,
        "one project per organization",
    )
    assert workspace["relationships"]["project"]["data"]["id"] == project["id"]
    mallory = Api(client, make_token(app, "other", "mallory"))
    assert_error(mallory.get(f"projects/{project['id']}"), 404)
