"""State versions through the TFC API: the lock rule, the serial/lineage guard, md5, uploads, downloads, rollback."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_token
from tests.tfc_api.conftest import MEDIA_TYPE, Api, assert_error, state

SV_ATTRIBUTES = {
    "serial",
    "lineage",
    "md5",
    "size",
    "status",
    "created-at",
    "resources-processed",
    "hosted-state-download-url",
}


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_inline_create_needs_the_callers_lock(
    app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any]
) -> None:
    assert_error(api.push(workspace["id"], state(1)), 409, "not locked")
    bob = Api(client, make_token(app, subject="bob"))
    bob.lock(workspace["id"])
    assert_error(api.push(workspace["id"], state(1)), 409, "bob@example.com")
    bob.unlock(workspace["id"])
    api.lock(workspace["id"])
    created = api.push(workspace["id"], state(1, outputs={"greeting": "hi"}))
    assert created.status_code == 201, created.json
    data = created.json["data"]
    assert data["type"] == "state-versions" and data["id"].startswith("sv-")
    assert set(data["attributes"]) >= SV_ATTRIBUTES
    assert data["attributes"]["status"] == "finalized" and data["attributes"]["serial"] == 1
    assert data["relationships"]["outputs"]["data"][0]["type"] == "state-version-outputs"
    current = api.get(f"workspaces/{workspace['id']}/current-state-version")
    assert current.json["data"]["id"] == data["id"]


def test_serial_lineage_and_md5_guards(api: Api, workspace: dict[str, Any]) -> None:
    api.lock(workspace["id"])
    assert api.push(workspace["id"], state(5)).status_code == 201
    assert_error(api.push(workspace["id"], state(4)), 409, "lower than the current serial 5")
    assert_error(api.push(workspace["id"], state(5, outputs={"x": 1})), 409, "equals the current serial")
    assert_error(api.push(workspace["id"], state(6, lineage="other")), 409, "lineage")
    assert_error(api.push(workspace["id"], state(6), md5="0" * 32), 400, "md5")
    assert_error(api.push(workspace["id"], state(6), serial=7), 400, "serial")
    retried = api.push(workspace["id"], state(5))  # the same bytes again: success that creates nothing
    assert retried.status_code == 201
    forced = api.push(workspace["id"], state(2, lineage="other"), force=True)
    assert forced.status_code == 201 and forced.json["data"]["attributes"]["serial"] == 2
    versions = api.get(f"workspaces/{workspace['id']}/state-versions").json
    assert [v["attributes"]["serial"] for v in versions["data"]] == [2, 5]
    assert versions["meta"]["pagination"]["total-count"] == 2


def test_bad_bodies_are_422_or_400(api: Api, workspace: dict[str, Any]) -> None:
    api.lock(workspace["id"])
    missing = api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": {"state": "e30="}}})
    assert_error(missing, 422)
    pointers = {e["source"]["pointer"] for e in missing.json["errors"]}
    assert pointers == {"/data/attributes/serial", "/data/attributes/md5"}
    bad = api.post(
        f"workspaces/{workspace['id']}/state-versions",
        {"data": {"attributes": {"serial": 1, "md5": "0" * 32, "state": "%%%"}}},
    )
    assert_error(bad, 400, "base64")


def test_force_needs_delete_permission(app: Flask, client: FlaskClient, workspace: dict[str, Any]) -> None:
    writer = Api(client, make_token(app, subject="wendy", role=None))
    with app.app_context():
        from app.repositories import orgs, rbac, users

        org = orgs.get_org("acme")
        role = rbac.create_role(org, "writers", "test")
        permission = rbac.create_permission(
            org,
            "write-lock",
            [{"actions": ["unit.read", "unit.write", "unit.lock"], "resources": ["*"], "effect": "allow"}],
            "test",
        )
        rbac.attach_permission(org, role, permission, "test")
        rbac.assign_role(org, users.get_user_by_subject("wendy"), role, "test")
    writer.lock(workspace["id"])
    assert writer.push(workspace["id"], state(1)).status_code == 201
    assert_error(writer.push(workspace["id"], state(0, lineage="x"), force=True), 403)


def test_download_streams_that_exact_version(api: Api, client: FlaskClient, workspace: dict[str, Any]) -> None:
    api.lock(workspace["id"])
    first, second = state(1, outputs={"v": "one"}), state(2, outputs={"v": "two"})
    old = api.push(workspace["id"], first).json["data"]
    api.push(workspace["id"], second)
    url = api.get(f"state-versions/{old['id']}").json["data"]["attributes"]["hosted-state-download-url"]
    assert url.startswith("http://localhost/api/v2/state-versions/")
    signed = client.get(path_of(url))  # no Authorization: the signature is the grant
    assert signed.status_code == 200 and signed.data == first
    assert hashlib.md5(signed.data).hexdigest() == old["attributes"]["md5"]
    assert api.get(f"state-versions/{old['id']}/download").data == first  # or with a token
    assert_error(client.get(f"/api/v2/state-versions/{old['id']}/download"), 401)
    tampered = path_of(url).replace("signature=", "signature=0")
    assert_error(client.get(tampered), 403)
    listed = api.get("state-versions?filter[workspace][name]=prod&filter[organization][name]=acme").json
    assert [v["id"] for v in listed["data"]][1] == old["id"]
    assert_error(api.get("state-versions?filter[workspace][name]=prod"), 400)


def test_upload_url_flow(api: Api, client: FlaskClient, workspace: dict[str, Any]) -> None:
    body = state(3, outputs={"greeting": "uploaded"})
    md5 = hashlib.md5(body).hexdigest()
    attributes = {"serial": 3, "md5": md5, "lineage": "lineage-1"}
    assert_error(api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": attributes}}), 409)
    api.lock(workspace["id"])
    created = api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": attributes}})
    assert created.status_code == 201
    data = created.json["data"]
    assert data["attributes"]["status"] == "pending"
    assert data["attributes"]["hosted-state-download-url"] is None
    upload, json_upload = (data["attributes"][k] for k in ("hosted-state-upload-url", "hosted-json-state-upload-url"))
    assert_error(api.get(f"workspaces/{workspace['id']}/current-state-version"), 404)
    assert api.get(f"workspaces/{workspace['id']}/state-versions").json["data"] == []
    assert_error(client.put(urlsplit(upload).path, data=body), 403)
    assert_error(client.put(path_of(upload).replace("expires=", "expires=1"), data=body), 403)
    assert_error(client.put(path_of(upload), data=state(3, outputs={"greeting": "other"})), 400, "md5")
    assert client.put(path_of(json_upload), data=b'{"format_version":"1.0"}').status_code == 200
    assert client.put(path_of(upload), data=body, headers={"Authorization": "Bearer junk"}).status_code == 200
    assert client.put(path_of(upload), data=body).status_code == 200  # a retried upload
    shown = api.get(f"state-versions/{data['id']}").json["data"]
    assert shown["attributes"]["status"] == "finalized" and shown["attributes"]["size"] == len(body)
    assert api.get(f"workspaces/{workspace['id']}/current-state-version").json["data"]["id"] == data["id"]
    assert client.get(path_of(shown["attributes"]["hosted-state-download-url"])).data == body


def test_upload_runs_the_guard_and_needs_the_lock_still_held(
    api: Api, client: FlaskClient, workspace: dict[str, Any]
) -> None:
    api.lock(workspace["id"])
    api.push(workspace["id"], state(5))
    body = state(4)
    attributes = {"serial": 4, "md5": hashlib.md5(body).hexdigest(), "lineage": "lineage-1"}
    data = api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": attributes}}).json["data"]
    upload = path_of(data["attributes"]["hosted-state-upload-url"])
    assert_error(client.put(upload, data=body), 409, "lower than the current serial")
    # the refused version is still the newest and still pending: the lock stays until it is forced off
    assert_error(api.unlock(workspace["id"]), 400, "latest state version is still pending", data["id"])
    assert api.post(f"workspaces/{workspace['id']}/actions/force-unlock").status_code == 200
    forced = api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": {**attributes}}})
    assert_error(forced, 409, "not locked")
    api.lock(workspace["id"])
    forced = api.post(
        f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": {**attributes, "force": True}}}
    ).json["data"]
    forced_upload = path_of(forced["attributes"]["hosted-state-upload-url"])
    assert api.post(f"workspaces/{workspace['id']}/actions/force-unlock").status_code == 200
    assert_error(client.put(forced_upload, data=body), 409, "not locked")
    api.lock(workspace["id"])
    assert client.put(forced_upload, data=body).status_code == 200
    assert api.get(f"state-versions/{forced['id']}").json["data"]["attributes"]["serial"] == 4


def test_upload_of_the_current_bytes_is_discarded(api: Api, client: FlaskClient, workspace: dict[str, Any]) -> None:
    api.lock(workspace["id"])
    body = state(1)
    current = api.push(workspace["id"], body).json["data"]
    attributes = {"serial": 1, "md5": hashlib.md5(body).hexdigest()}
    pending = api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": attributes}}).json
    upload = path_of(pending["data"]["attributes"]["hosted-state-upload-url"])
    assert client.put(upload, data=body).status_code == 200  # a client retrying a write that already landed
    assert api.get(f"state-versions/{pending['data']['id']}").json["data"]["attributes"]["status"] == "discarded"
    assert api.get(f"workspaces/{workspace['id']}/current-state-version").json["data"]["id"] == current["id"]
    assert api.unlock(workspace["id"]).status_code == 200  # a discarded version is not pending
    assert client.put(upload, data=body).status_code == 200  # and that upload retried once more, lock or not
    assert_error(client.put(upload, data=state(1, outputs={"x": "other"})), 409, "different content")


def test_rollback(api: Api, workspace: dict[str, Any]) -> None:
    api.lock(workspace["id"])
    first = api.push(workspace["id"], state(1, outputs={"v": "one"})).json["data"]
    api.push(workspace["id"], state(2, outputs={"v": "two"}))
    body = {
        "data": {
            "type": "state-versions",
            "relationships": {"rollback-state-version": {"data": {"type": "state-versions", "id": first["id"]}}},
        }
    }
    api.unlock(workspace["id"])
    assert_error(api.patch(f"workspaces/{workspace['id']}/state-versions", body), 409, "not locked")
    api.lock(workspace["id"])
    rolled = api.patch(f"workspaces/{workspace['id']}/state-versions", body)
    assert rolled.status_code == 200 and rolled.mimetype == MEDIA_TYPE
    assert rolled.json["data"]["attributes"]["serial"] == 3
    outputs = api.get(f"workspaces/{workspace['id']}/current-state-version-outputs").json["data"]
    assert outputs[0]["attributes"]["value"] == "one"
    assert_error(api.patch(f"workspaces/{workspace['id']}/state-versions", {"data": {}}), 400)
    missing = {"data": {"relationships": {"rollback-state-version": {"data": {"id": "sv-nope"}}}}}
    assert_error(api.patch(f"workspaces/{workspace['id']}/state-versions", missing), 404)


def test_outputs(app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any]) -> None:
    api.lock(workspace["id"])
    values = {"greeting": "hi", "count": 3, "flag": True, "items": ["a", "b"], "secret_token": "s3cr3t"}
    version = api.push(workspace["id"], state(1, outputs=values)).json["data"]
    listed = api.get(f"state-versions/{version['id']}/outputs").json
    by_name = {o["attributes"]["name"]: o for o in listed["data"]}
    assert listed["meta"]["pagination"]["total-count"] == 5
    assert {o["type"] for o in listed["data"]} == {"state-version-outputs"}
    assert by_name["greeting"]["attributes"] == {
        "name": "greeting",
        "sensitive": False,
        "type": "string",
        "value": "hi",
        "detailed-type": "string",
    }
    assert by_name["items"]["attributes"]["type"] == "array"
    assert by_name["items"]["attributes"]["detailed-type"] == ["tuple", ["string", "string"]]
    assert by_name["flag"]["attributes"]["type"] == "boolean"
    assert by_name["secret_token"]["attributes"]["value"] is None
    assert by_name["secret_token"]["attributes"]["sensitive"] is True
    current = api.get(f"workspaces/{workspace['id']}/current-state-version-outputs").json["data"]
    assert {o["id"] for o in current} == {o["id"] for o in listed["data"]}
    secret = api.get(f"state-version-outputs/{by_name['secret_token']['id']}").json["data"]
    assert secret["attributes"]["value"] == "s3cr3t"
    assert_error(api.get("state-version-outputs/wsout-nope"), 404)
    included = api.get(f"state-versions/{version['id']}?include=outputs").json["included"]
    assert len(included) == 5
    consumer = Api(client, make_token(app, subject="carol", scope="outputs-only"))
    assert consumer.get(f"workspaces/{workspace['id']}/current-state-version-outputs").status_code == 200
    shown = consumer.get(f"workspaces/{workspace['id']}/current-state-version").json["data"]
    assert_error(consumer.get(f"state-versions/{version['id']}/download"), 403)
    # terraform_remote_state through the remote backend downloads the state: it gets the outputs, sensitive
    # ones included, and no resources
    url = shown["attributes"]["hosted-state-download-url"]
    assert "/outputs-download?" in url and shown["attributes"]["hosted-json-state-download-url"] is None
    document = client.get(path_of(url)).json
    assert document["resources"] == [] and document["serial"] == 1
    assert document["outputs"]["secret_token"] == {"value": "s3cr3t", "type": "string", "sensitive": True}
    # the outputs URL is its own signed resource: it cannot be turned into the full download
    full = client.get(path_of(url.replace("/outputs-download?", "/download?")))
    assert full.status_code == 403
    assert consumer.get(f"state-versions/{version['id']}/outputs-download").json["resources"] == []


def test_other_organizations_versions_are_not_found(
    app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any]
) -> None:
    api.lock(workspace["id"])
    version = api.push(workspace["id"], state(1, outputs={"x": "y"})).json["data"]
    mallory = Api(client, make_token(app, "other", "mallory"))
    for path in (
        f"state-versions/{version['id']}",
        f"state-versions/{version['id']}/download",
        f"state-versions/{version['id']}/outputs",
        f"state-version-outputs/{version['relationships']['outputs']['data'][0]['id']}",
        "state-versions?filter[workspace][name]=prod&filter[organization][name]=acme",
    ):
        assert_error(mallory.get(path), 404)
