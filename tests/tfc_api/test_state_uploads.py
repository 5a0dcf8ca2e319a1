"""The upload-URL flow as Terraform >= 1.6 drives it: the state and its JSON copy PUT in parallel, in either order,
retried; unlock while a version is pending; the JSON copies kept encrypted and served with the state's rules."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import StateVersion
from tests.factories import make_token
from tests.tfc_api.conftest import Api, assert_error, state

ROUNDS = 20
SECRET_MARKER = "plaintext-marker-3f9c"


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def json_state(serial: int, marker: str = "json-copy") -> bytes:
    """Terraform's external JSON format of a state (what it PUTs to the JSON upload URL)."""
    document = {
        "format_version": "1.0",
        "terraform_version": "1.11.4",
        "values": {
            "outputs": {"greeting": {"sensitive": False, "value": f"{marker}-{serial}", "type": "string"}},
            "root_module": {"resources": [{"address": "null_resource.r0", "mode": "managed", "values": {}}]},
        },
    }
    return json.dumps(document).encode()


def json_outputs(**outputs: tuple[Any, Any, bool]) -> bytes:
    """``json-state-outputs``: ``{name: {"sensitive", "value", "type"}}`` as Terraform marshals it."""
    return json.dumps(
        {
            name: {"sensitive": sensitive, "value": value, "type": kind}
            for name, (value, kind, sensitive) in outputs.items()
        }
    ).encode()


def create_pending(api: Api, workspace_id: str, body: bytes, outputs: bytes | None = None) -> dict[str, Any]:
    document = json.loads(body)
    attributes: dict[str, Any] = {
        "serial": document["serial"],
        "md5": hashlib.md5(body).hexdigest(),
        "lineage": document["lineage"],
    }
    if outputs is not None:
        attributes["json-state-outputs"] = base64.b64encode(outputs).decode()
    created = api.post(f"workspaces/{workspace_id}/state-versions", {"data": {"attributes": attributes}})
    assert created.status_code == 201, created.json
    assert created.json["data"]["attributes"]["status"] == "pending"
    return created.json["data"]


def together(calls: list[Callable[[], int]]) -> list[int]:
    """Run ``calls`` in threads released at the same moment; their statuses in order."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int | BaseException] = [RuntimeError("no reply")] * len(calls)

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            statuses[n] = calls[n]()
        except BaseException as exc:  # reported below
            statuses[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    failures = [s for s in statuses if isinstance(s, BaseException)]
    assert not failures, failures
    return [s for s in statuses if not isinstance(s, BaseException)]


def put(app: Flask, url: str, data: bytes) -> Callable[[], int]:
    """A PUT the way go-tfe sends it: octet-stream, the token header included (it is ignored)."""

    def send() -> int:
        response = app.test_client().put(
            path_of(url), data=data, headers={"Content-Type": "application/octet-stream", "Authorization": "Bearer x"}
        )
        return response.status_code

    return send


def current_id(api: Api, workspace_id: str) -> str | None:
    response = api.get(f"workspaces/{workspace_id}/current-state-version")
    return response.json["data"]["id"] if response.status_code == 200 else None


@pytest.mark.parametrize("order", ["together", "state-first", "json-first"])
def test_parallel_state_and_json_uploads_with_retries(
    app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any], order: str
) -> None:
    api.lock(workspace["id"])
    seen: dict[int, int] = {}
    for round_no in range(ROUNDS):
        serial = round_no + 1
        body, copy = state(serial, outputs={"greeting": f"hi-{serial}"}), json_state(serial)
        before = current_id(api, workspace["id"])
        version = create_pending(api, workspace["id"], body)
        urls = version["attributes"]
        upload, json_upload = urls["hosted-state-upload-url"], urls["hosted-json-state-upload-url"]
        assert current_id(api, workspace["id"]) == before  # announced is not current
        state_puts = [put(app, upload, body), put(app, upload, body)]  # a PUT and its concurrent retry
        json_puts = [put(app, json_upload, copy), put(app, json_upload, copy)]
        if order == "together":
            statuses = together(state_puts + json_puts)
        elif order == "state-first":
            statuses = together(state_puts) + together(json_puts)
        else:
            statuses = together(json_puts)
            assert current_id(api, workspace["id"]) == before  # the JSON copy alone publishes nothing
            assert api.get(f"state-versions/{version['id']}").json["data"]["attributes"]["status"] == "pending"
            statuses += together(state_puts)
        for status in statuses:
            seen[status] = seen.get(status, 0) + 1
        assert statuses == [200, 200, 200, 200], (round_no, statuses)
        shown = api.get(f"state-versions/{version['id']}").json["data"]["attributes"]
        assert shown["status"] == "finalized" and shown["serial"] == serial
        assert current_id(api, workspace["id"]) == version["id"]
        assert client.get(path_of(shown["hosted-state-download-url"])).data == body
        assert client.get(path_of(shown["hosted-json-state-download-url"])).data == copy
        # retries after the fact: the same bytes are fine, other bytes are refused
        assert put(app, upload, body)() == 200
        assert put(app, json_upload, copy)() == 200
        assert_error(client.put(path_of(upload), data=state(serial, outputs={"greeting": "x"})), 409, "different")
        assert_error(client.put(path_of(json_upload), data=json_state(serial, "other")), 409, "different content")
    assert seen == {200: 4 * ROUNDS}
    versions = api.get(f"workspaces/{workspace['id']}/state-versions?page[size]=100").json
    assert [v["attributes"]["serial"] for v in versions["data"]] == list(range(ROUNDS, 0, -1))
    assert api.unlock(workspace["id"]).status_code == 200


def test_only_verified_bytes_publish(api: Api, client: FlaskClient, workspace: dict[str, Any]) -> None:
    api.lock(workspace["id"])
    body = state(2, outputs={"greeting": "verified"})
    version = create_pending(api, workspace["id"], body)
    upload = path_of(version["attributes"]["hosted-state-upload-url"])
    assert_error(client.put(upload, data=state(2, outputs={"greeting": "tampered"})), 400, "md5")
    assert_error(client.put(upload, data=b'{"not": "a state"'), 400)
    assert current_id(api, workspace["id"]) is None
    assert client.put(upload, data=body).status_code == 200
    assert current_id(api, workspace["id"]) == version["id"]
    # declared serial and lineage are checked too
    other = state(3, lineage="lineage-1")
    attributes = {"serial": 4, "md5": hashlib.md5(other).hexdigest(), "lineage": "lineage-1"}
    wrong = api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": attributes}}).json
    assert_error(client.put(path_of(wrong["data"]["attributes"]["hosted-state-upload-url"]), data=other), 400, "serial")
    assert current_id(api, workspace["id"]) == version["id"]


def test_unlock_waits_for_a_pending_upload(
    app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any]
) -> None:
    api.lock(workspace["id"])
    body = state(1)
    version = create_pending(api, workspace["id"], body)
    refused = api.unlock(workspace["id"])
    # go-tfe turns this wording (any status but 409) into ErrWorkspaceLockedStateVersionStillPending, which
    # Terraform 1.10+ retries; a 409 from actions/unlock would read as "not locked"
    assert_error(refused, 400, "latest state version is still pending", version["id"])
    assert api.get(f"workspaces/{workspace['id']}").json["data"]["attributes"]["locked"] is True
    assert client.put(path_of(version["attributes"]["hosted-state-upload-url"]), data=body).status_code == 200
    assert api.unlock(workspace["id"]).status_code == 200
    # an upload abandoned past its URL's lifetime no longer holds the lock
    api.lock(workspace["id"])
    stale = create_pending(api, workspace["id"], state(2))
    assert_error(api.unlock(workspace["id"]), 400, "still pending")
    with app.app_context():
        row = db.session.get(StateVersion, stale["id"])
        assert row is not None
        row.created_at -= timedelta(minutes=16)
        db.session.commit()
    assert api.unlock(workspace["id"]).status_code == 200
    # force-unlock is never held up
    api.lock(workspace["id"])
    create_pending(api, workspace["id"], state(2))
    assert api.post(f"workspaces/{workspace['id']}/actions/force-unlock").status_code == 200
    assert api.get(f"workspaces/{workspace['id']}").json["data"]["attributes"]["locked"] is False


def test_json_copies_are_encrypted_and_follow_the_state_permissions(
    app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any], tmp_path: Path
) -> None:
    api.lock(workspace["id"])
    body = state(1, outputs={"items": ["a", "b"], "secret_token": SECRET_MARKER + "-state"})
    copy = json_state(1, SECRET_MARKER)
    outputs = json_outputs(
        items=(["a", "b"], ["set", "string"], False), secret_token=(SECRET_MARKER + "-outputs", "string", True)
    )
    version = create_pending(api, workspace["id"], body, outputs)
    attributes = version["attributes"]
    assert client.put(path_of(attributes["hosted-json-state-upload-url"]), data=copy).status_code == 200
    assert client.put(path_of(attributes["hosted-state-upload-url"]), data=body).status_code == 200

    shown = api.get(f"state-versions/{version['id']}").json["data"]["attributes"]
    signed = client.get(path_of(shown["hosted-json-state-download-url"]))  # no Authorization: the signature
    assert signed.status_code == 200 and signed.data == copy and signed.mimetype == "application/json"
    assert api.get(f"state-versions/{version['id']}/json-download").data == copy  # or a token that may read
    assert_error(client.get(f"/api/v2/state-versions/{version['id']}/json-download"), 401)
    assert_error(client.get(path_of(shown["hosted-json-state-download-url"]).replace("signature=", "signature=0")), 403)
    # a signature for the state download does not open the JSON copy
    forged = path_of(shown["hosted-state-download-url"]).replace("/download?", "/json-download?")
    assert_error(client.get(forged), 403)

    consumer = Api(client, make_token(app, subject="carol", scope="outputs-only"))
    seen = consumer.get(f"state-versions/{version['id']}").json["data"]["attributes"]
    assert seen["hosted-json-state-download-url"] is None  # the JSON state lists every resource
    assert_error(consumer.get(f"state-versions/{version['id']}/json-download"), 403)
    if seen["hosted-state-download-url"] is not None:  # the outputs-only document cannot become the JSON copy
        turned = path_of(seen["hosted-state-download-url"]).replace("/outputs-download?", "/json-download?")
        assert_error(client.get(turned), 403)
    mallory = Api(client, make_token(app, "other", "mallory"))
    assert_error(mallory.get(f"state-versions/{version['id']}/json-download"), 404)

    # the exact type from Terraform's JSON outputs wins over the state's (which says "tuple" here)
    listed = {
        o["attributes"]["name"]: o["attributes"]
        for o in consumer.get(f"workspaces/{workspace['id']}/current-state-version-outputs").json["data"]
    }
    assert listed["items"]["detailed-type"] == ["set", "string"] and listed["items"]["type"] == "array"
    assert listed["items"]["value"] == ["a", "b"] and listed["secret_token"]["value"] is None

    stored = [p.read_bytes() for p in (tmp_path / "states").rglob("*") if p.is_file()]
    assert len(stored) == 3  # the state, the JSON state and the JSON outputs
    assert not any(SECRET_MARKER.encode() in blob for blob in stored)
    with app.app_context():
        row = db.session.get(StateVersion, version["id"])
        assert row is not None and row.json_state_key and row.json_outputs_key
        assert SECRET_MARKER not in json.dumps(
            {c.key: str(getattr(row, c.key)) for c in StateVersion.__table__.columns}
        )


def test_inline_create_keeps_the_json_copies(client: FlaskClient, api: Api, workspace: dict[str, Any]) -> None:
    """Terraform's fallback for servers without upload URLs sends state, json-state and json-state-outputs inline."""
    api.lock(workspace["id"])
    body, copy = state(1, outputs={"n": 3}), json_state(1)
    attributes = {
        "serial": 1,
        "md5": hashlib.md5(body).hexdigest(),
        "lineage": "lineage-1",
        "state": base64.b64encode(body).decode(),
        "json-state": base64.b64encode(copy).decode(),
        "json-state-outputs": base64.b64encode(json_outputs(n=(3, "number", False))).decode(),
    }
    created = api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": attributes}})
    assert created.status_code == 201, created.json
    url = created.json["data"]["attributes"]["hosted-json-state-download-url"]
    assert client.get(path_of(url)).data == copy
    retried = api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": attributes}})
    assert retried.status_code == 201 and retried.json["data"]["id"] == created.json["data"]["id"]


def test_bad_json_copies_are_400(client: FlaskClient, api: Api, workspace: dict[str, Any]) -> None:
    api.lock(workspace["id"])
    body = state(1)
    base = {"serial": 1, "md5": hashlib.md5(body).hexdigest(), "lineage": "lineage-1"}
    for name, value, words in (
        ("json-state-outputs", "%%%", "base64"),
        ("json-state-outputs", base64.b64encode(b"[1, 2]").decode(), "object of outputs"),
        ("json-state", base64.b64encode(b"{nope").decode(), "not valid JSON"),
    ):
        refused = api.post(
            f"workspaces/{workspace['id']}/state-versions",
            {"data": {"attributes": {**base, name: value, "state": base64.b64encode(body).decode()}}},
        )
        assert_error(refused, 400, words)
    version = create_pending(api, workspace["id"], body)
    json_upload = path_of(version["attributes"]["hosted-json-state-upload-url"])
    assert_error(client.put(json_upload, data=b"[1, 2]"), 400, "JSON object")
    assert_error(client.put(json_upload, data=b'{"format_version": '), 400, "not valid JSON")
    assert_error(client.put(urlsplit(json_upload).path, data=json_state(1)), 403)
    assert client.put(json_upload, data=json_state(1)).status_code == 200


def test_concurrent_inline_creates_one_wins_the_rest_get_409(app: Flask, api: Api, workspace: dict[str, Any]) -> None:
    """The TFC create path races like the http backend: one 201, the others 409 saying why, never a 5xx."""
    api.lock(workspace["id"])
    writers = 16
    bodies = [state(1, outputs={"writer": n}) for n in range(writers)]

    def create(n: int) -> Callable[[], int]:
        def send() -> int:
            return Api(app.test_client(), api.token).push(workspace["id"], bodies[n]).status_code

        return send

    statuses = together([create(n) for n in range(writers)])
    assert sorted(statuses) == [201] + [409] * (writers - 1), statuses
    winner = statuses.index(201)
    assert together([create(n) for n in range(writers)]) == [201 if n == winner else 409 for n in range(writers)]
