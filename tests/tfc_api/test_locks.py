"""lock / unlock / force-unlock: 200 with the workspace, conflicts as 409 JSON:API errors (never 423)."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import basic, make_token
from tests.tfc_api.conftest import Api, assert_error


def test_lock_unlock_cycle(api: Api, workspace: dict[str, Any]) -> None:
    locked = api.lock(workspace["id"], "Locked by Terraform")
    assert locked.status_code == 200
    data = locked.json["data"]
    assert data["type"] == "workspaces" and data["attributes"]["locked"] is True
    assert data["attributes"]["locked-reason"] == "Locked by Terraform"
    assert data["relationships"]["locked-by"]["data"]["type"] == "users"
    me = api.get("account/details").json["data"]["id"]
    assert data["relationships"]["locked-by"]["data"]["id"] == me
    assert_error(api.lock(workspace["id"]), 409, "already locked")
    unlocked = api.unlock(workspace["id"])
    assert unlocked.status_code == 200 and unlocked.json["data"]["attributes"]["locked"] is False
    assert unlocked.json["data"]["relationships"]["locked-by"]["data"] is None
    assert api.unlock(workspace["id"]).status_code == 200  # a retried unlock does not fail


def test_lock_bodies_the_clients_send(api: Api, workspace: dict[str, Any]) -> None:
    # go-tfe with an empty data.type, terrasnek's null body, pytfe's plain JSON
    jsonapi = api.post(
        f"workspaces/{workspace['id']}/actions/lock", {"data": {"type": "", "attributes": {"reason": "x"}}}
    )
    assert jsonapi.status_code == 200
    api.unlock(workspace["id"])
    assert (
        api.client.post(
            f"/api/v2/workspaces/{workspace['id']}/actions/lock", data=b"null", headers=api.headers()
        ).status_code
        == 200
    )
    assert (
        api.client.post(
            f"/api/v2/workspaces/{workspace['id']}/actions/unlock", data=b"null", headers=api.headers()
        ).status_code
        == 200
    )
    assert_error(
        api.client.post(f"/api/v2/workspaces/{workspace['id']}/actions/lock", data=b"{nope", headers=api.headers()), 400
    )


def test_someone_elses_lock_is_a_409_and_force_unlock_clears_it(
    app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any]
) -> None:
    bob = Api(client, make_token(app, subject="bob"))
    api.lock(workspace["id"])
    assert_error(bob.lock(workspace["id"]), 409)
    conflict = bob.unlock(workspace["id"])
    assert_error(conflict, 409, "alice@example.com", "force-unlock")
    forced = bob.post(f"workspaces/{workspace['id']}/actions/force-unlock")
    assert forced.status_code == 200 and forced.json["data"]["attributes"]["locked"] is False
    assert bob.post(f"workspaces/{workspace['id']}/actions/force-unlock").status_code == 200


def test_tfe_lock_is_visible_to_the_http_backend_and_not_adopted(
    app: Flask, client: FlaskClient, api: Api, token: str, workspace: dict[str, Any]
) -> None:
    api.lock(workspace["id"], "maintenance")
    blocked = client.open(
        "/state/acme/prod",
        method="LOCK",
        headers=basic(token),
        data=json.dumps({"ID": "http-1", "Operation": "apply", "Who": "x"}),
    )
    assert blocked.status_code == 423
    assert blocked.json["Info"] == "maintenance" and blocked.json["ID"].startswith("tfe-")
    api.unlock(workspace["id"])
    lock_body = json.dumps({"ID": "http-2", "Operation": "apply", "Who": "alice@laptop"})
    assert client.open("/state/acme/prod", method="LOCK", headers=basic(token), data=lock_body).status_code == 200
    assert api.get(f"workspaces/{workspace['id']}").json["data"]["attributes"]["locked"] is True
    # the same user's http-backend lock is not a TFE lock: unlock refuses, force-unlock clears it
    assert_error(api.unlock(workspace["id"]), 409, "http-2")
    assert api.post(f"workspaces/{workspace['id']}/actions/force-unlock").status_code == 200


def test_force_unlock_disabled(app: Flask, client: FlaskClient, workspace: dict[str, Any], api: Api) -> None:
    import dataclasses

    from app.extensions import SERVICES_KEY

    built = app.extensions[SERVICES_KEY]
    app.extensions[SERVICES_KEY] = dataclasses.replace(
        built, config=dataclasses.replace(built.config, force_unlock_enabled=False)
    )
    api.lock(workspace["id"])
    assert (
        api.get(f"workspaces/{workspace['id']}").json["data"]["attributes"]["permissions"]["can-force-unlock"] is False
    )
    assert_error(api.post(f"workspaces/{workspace['id']}/actions/force-unlock"), 409, "FORCE_UNLOCK_ENABLED")
