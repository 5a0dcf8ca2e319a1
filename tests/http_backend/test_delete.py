"""Deleting a workspace through the http backend leaves nothing behind, its lock included."""

from __future__ import annotations

import json

from app.extensions import drivers
from app.repositories.orgs import get_org
from app.repositories.workspaces import get_workspace
from tests.factories import basic, lock_info, make_token

STATE = json.dumps({"version": 4, "serial": 1, "lineage": "del", "outputs": {}, "resources": []}).encode()


def test_delete_by_the_lock_holder_releases_the_lock(app, client):
    auth = basic(make_token(app))
    assert client.open("/state/acme/gone", method="LOCK", data=lock_info("holder"), headers=auth).status_code == 200
    assert client.post("/state/acme/gone?ID=holder", data=STATE, headers=auth).status_code == 200
    with app.app_context():
        workspace_id = get_workspace(get_org("acme"), "gone").id
    assert client.delete("/state/acme/gone?ID=holder", headers=auth).status_code == 200
    assert client.get("/state/acme/gone", headers=auth).status_code == 404
    with app.app_context():
        assert drivers().locks.get(workspace_id) is None
