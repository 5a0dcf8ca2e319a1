"""One test per row of the Responses table in spec/http-backend.md, plus routes, retention and auditing."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from functools import partial
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import AuditEvent, StateVersion
from app.repositories import orgs, workspaces
from app.repositories.state_versions import list_versions
from tests import factories
from tests.factories import basic, bearer, make_token

PATH = "/state/acme/prod"


def state(serial: int, lineage: str = "lineage-1", **extra: object) -> bytes:
    """A state document; ``indent`` makes the bytes differ from any re-serialisation by the server."""
    document = {
        "version": 4,
        "terraform_version": "1.0.3",
        "serial": serial,
        "lineage": lineage,
        "outputs": {"name": {"value": f"v{serial}", "type": "string"}},
        "resources": [],
        **extra,
    }
    return json.dumps(document, indent=3).encode() + b"\n"


# LockInfo formatted unusually (indented, non-ASCII escaped, nanoseconds) so that exact echoing is visible.
lock_info = partial(
    factories.lock_info, who="alice@laptop", info="caf\u00e9", created="2024-01-02T03:04:05.123456789Z", indent=2
)


def md5_header(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def do_lock(client: FlaskClient, lock_id: str, headers: dict[str, str], path: str = PATH):
    return client.open(path, method="LOCK", data=lock_info(lock_id), headers=headers)


def do_unlock(client: FlaskClient, body: bytes, headers: dict[str, str], path: str = PATH):
    return client.open(path, method="UNLOCK", data=body, headers=headers)


def version_serials(app: Flask, org: str = "acme", name: str = "prod") -> list[int]:
    """Serials of the workspace's stored versions, newest first ([] when the workspace does not exist)."""
    with app.app_context():
        organization = orgs.get_org(org)
        workspace = workspaces.get_workspace(organization, name) if organization else None
        if workspace is None:
            return []
        found, total = list_versions(workspace)
        assert total == len(found)
        return [v.serial for v in found]


def workspace_exists(app: Flask, org: str, name: str) -> bool:
    with app.app_context():
        organization = orgs.get_org(org)
        return organization is not None and workspaces.get_workspace(organization, name) is not None


def workspace_id(app: Flask, org: str = "acme", name: str = "prod") -> str:
    with app.app_context():
        found = workspaces.get_workspace(orgs.require_org(org), name)
        assert found is not None
        return found.id


def audit_events(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)))
        db.session.expunge_all()
        return events


def actions(app: Flask) -> list[tuple[str, str]]:
    return [(e.action, e.outcome) for e in audit_events(app) if e.workspace_name is not None]


@pytest.fixture
def auth(app: Flask) -> dict[str, str]:
    return basic(make_token(app))


# --- GET ---------------------------------------------------------------------------------------------------


def test_get_returns_exact_bytes_with_content_type_and_md5(app, client, auth):
    body = state(1)
    assert client.post(PATH, data=body, headers=auth).status_code == 200
    response = client.get(PATH, headers=auth)
    assert response.status_code == 200
    assert response.data == body
    assert response.mimetype == "application/json"
    assert response.headers["Content-MD5"] == md5_header(body)
    assert int(response.headers["Content-Length"]) == len(body)


def test_get_returns_latest_write(client, auth):
    for serial in (1, 2, 3):
        assert client.post(PATH, data=state(serial), headers=auth).status_code == 200
    response = client.get(PATH, headers=auth)
    assert response.data == state(3)
    assert response.headers["Content-MD5"] == md5_header(state(3))


def test_get_without_state_is_404_json(app, client, auth):
    # The workspace exists (a lock created it) but nothing was written yet.
    assert do_lock(client, "l1", auth).status_code == 200
    assert workspace_exists(app, "acme", "prod")
    response = client.get(PATH, headers=auth)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert "no state" in response.json["error"]


def test_get_unknown_workspace_is_404(app, client, auth):
    response = client.get("/state/acme/never-written", headers=auth)
    assert response.status_code == 404
    assert "never-written" in response.json["error"]
    assert not workspace_exists(app, "acme", "never-written")


def test_get_unknown_org_is_404(client, auth):
    response = client.get("/state/nosuch/prod", headers=auth)
    assert response.status_code == 404
    assert response.json["error"]


# --- POST ----------------------------------------------------------------------------------------------------


def test_post_accepted(app, client, auth):
    response = client.post(PATH, data=state(1), headers={**auth, "Content-MD5": md5_header(state(1))})
    assert response.status_code == 200
    assert len(response.data) < 1024
    if response.data:
        json.loads(response.data)
    assert version_serials(app) == [1]


def test_put_works_like_post(app, client, auth):
    assert client.put(PATH, data=state(1), headers=auth).status_code == 200
    assert client.put(PATH, data=state(2), headers=auth).status_code == 200
    assert client.get(PATH, headers=auth).data == state(2)
    assert version_serials(app) == [2, 1]
    # PUT goes through the same guard as POST.
    response = client.put(PATH, data=state(1), headers=auth)
    assert response.status_code == 409


def test_post_same_serial_same_bytes_stores_nothing_new(app, client, auth):
    assert client.post(PATH, data=state(4), headers=auth).status_code == 200
    response = client.post(PATH, data=state(4), headers=auth)
    assert response.status_code == 200
    assert version_serials(app) == [4]
    assert client.get(PATH, headers=auth).data == state(4)


@pytest.mark.parametrize("query", ["", "?ID=someone-else"], ids=["no-id", "wrong-id"])
def test_post_while_locked_by_another_is_409_with_holder(app, client, auth, query):
    assert client.post(PATH, data=state(1), headers=auth).status_code == 200
    assert do_lock(client, "holder-id", auth).status_code == 200
    response = client.post(PATH + query, data=state(2), headers=auth)
    assert response.status_code == 409
    assert response.json["error"]
    assert response.json["lock"] == json.loads(lock_info("holder-id"))
    assert client.get(PATH, headers=auth).data == state(1)
    assert version_serials(app) == [1]


def test_post_with_holders_id_is_accepted(app, client, auth):
    assert do_lock(client, "holder-id", auth).status_code == 200
    response = client.post(PATH + "?ID=holder-id", data=state(1), headers=auth)
    assert response.status_code == 200
    assert client.get(PATH, headers=auth).data == state(1)


def test_post_lower_serial_is_409_naming_both_serials(app, client, auth):
    assert client.post(PATH, data=state(41), headers=auth).status_code == 200
    response = client.post(PATH, data=state(17), headers=auth)
    assert response.status_code == 409
    message = response.json["error"]
    assert "17" in message
    assert "41" in message
    assert client.get(PATH, headers=auth).data == state(41)
    assert version_serials(app) == [41]


def test_post_same_serial_different_bytes_is_409(app, client, auth):
    assert client.post(PATH, data=state(5), headers=auth).status_code == 200
    response = client.post(PATH, data=state(5, extra_field="changed"), headers=auth)
    assert response.status_code == 409
    assert "serial" in response.json["error"]
    assert client.get(PATH, headers=auth).data == state(5)
    assert version_serials(app) == [5]


def test_post_lineage_differs_is_409_saying_how_to_override(app, client, auth):
    assert client.post(PATH, data=state(3, lineage="old-lineage"), headers=auth).status_code == 200
    response = client.post(PATH, data=state(9, lineage="new-lineage"), headers=auth)
    assert response.status_code == 409
    message = response.json["error"]
    assert "lineage" in message
    assert "force=true" in message
    assert client.get(PATH, headers=auth).data == state(3, lineage="old-lineage")


def test_forced_write_with_full_token_replaces_lineage_and_is_audited(app, client, auth):
    assert client.post(PATH, data=state(3, lineage="old-lineage"), headers=auth).status_code == 200
    replacement = state(1, lineage="new-lineage")
    response = client.post(PATH + "?force=true", data=replacement, headers=auth)
    assert response.status_code == 200, response.json
    assert client.get(PATH, headers=auth).data == replacement
    forced = [e for e in audit_events(app) if e.action == "state.write" and e.outcome == "forced"]
    assert len(forced) == 1
    assert forced[0].actor == "alice"
    assert forced[0].workspace_name == "prod"


def test_forced_write_is_refused_to_read_only_token(app, client, auth):
    assert client.post(PATH, data=state(3, lineage="old-lineage"), headers=auth).status_code == 200
    read_only = basic(make_token(app, subject="reader", scope="read-only"))
    response = client.post(PATH + "?force=true", data=state(1, lineage="new-lineage"), headers=read_only)
    assert response.status_code == 403
    assert client.get(PATH, headers=auth).data == state(3, lineage="old-lineage")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"", {}),
        (b"[1, 2, 3]", {}),
        (b'"a string"', {}),
        (b"not json at all", {}),
        (state(2), {"Content-MD5": md5_header(b"something else")}),
    ],
    ids=["empty", "json-array", "json-string", "not-json", "bad-md5"],
)
def test_post_invalid_body_is_400(app, client, auth, body, headers):
    assert client.post(PATH, data=state(1), headers=auth).status_code == 200
    response = client.post(PATH, data=body, headers={**auth, **headers})
    assert response.status_code == 400
    assert response.json["error"]
    assert client.get(PATH, headers=auth).data == state(1)
    assert version_serials(app) == [1]


def test_post_larger_than_max_state_size_is_413(make_app):
    small = make_app(max_state_size=1000)
    auth = basic(make_token(small))
    client = small.test_client()
    padding = "x" * 2000
    response = client.post(PATH, data=state(1, padding=padding), headers=auth)
    assert response.status_code == 413
    assert "1000" in response.json["error"]
    assert version_serials(small) == []
    # The limit is inclusive: a body of exactly MAX_STATE_SIZE bytes is accepted.
    exact = state(1, padding="y" * (1000 - len(state(1, padding=""))))
    assert len(exact) == 1000
    assert client.post(PATH, data=exact, headers=auth).status_code == 200
    assert client.get(PATH, headers=auth).data == exact


@pytest.mark.parametrize("first_serial", [0, 1], ids=["terraform-1.0.3", "terraform-1.4"])
def test_first_write_with_serial_0_or_1_is_accepted(app, client, auth, first_serial):
    assert client.post(PATH, data=state(first_serial), headers=auth).status_code == 200
    assert client.get(PATH, headers=auth).data == state(first_serial)
    assert client.post(PATH, data=state(first_serial + 1), headers=auth).status_code == 200
    assert version_serials(app) == [first_serial + 1, first_serial]


def test_writes_without_lock_are_allowed_by_default(client, auth):
    assert client.post(PATH, data=state(1), headers=auth).status_code == 200


def test_require_lock_for_write_refuses_unlocked_writes(make_app):
    strict = make_app(require_lock_for_write=True)
    auth = basic(make_token(strict))
    client = strict.test_client()
    assert client.post(PATH, data=state(1), headers=auth).status_code == 409
    assert do_lock(client, "l1", auth).status_code == 200
    assert client.post(PATH + "?ID=l1", data=state(1), headers=auth).status_code == 200


# --- LOCK / UNLOCK ----------------------------------------------------------------------------------------


def test_lock_acquired_is_200_empty(client, auth):
    response = do_lock(client, "lock-a", auth)
    assert response.status_code == 200
    assert response.data == b""


def test_relock_with_same_id_is_200(client, auth):
    assert do_lock(client, "lock-a", auth).status_code == 200
    response = do_lock(client, "lock-a", auth)
    assert response.status_code == 200
    assert response.data == b""
    # Still held by lock-a.
    assert do_lock(client, "lock-b", auth).status_code == 423


def test_lock_held_by_other_is_423_with_holders_exact_lockinfo(client, auth):
    assert do_lock(client, "lock-a", auth).status_code == 200
    response = client.open(PATH, method="LOCK", data=lock_info("lock-b", who="bob@ci"), headers=auth)
    assert response.status_code == 423
    assert response.data == lock_info("lock-a")
    assert json.loads(response.data)["ID"] == "lock-a"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"Operation": "OperationTypeApply"}',
        b'{"ID": 42}',
        b'{"ID": ""}',
        b'{"ID": "x", "Who": 7}',
    ],
    ids=["empty", "not-json", "array", "no-id", "numeric-id", "empty-id", "non-string-field"],
)
def test_lock_with_invalid_lockinfo_is_400(app, client, auth, body):
    response = client.open(PATH, method="LOCK", data=body, headers=auth)
    assert response.status_code == 400
    assert response.json["error"]
    assert not workspace_exists(app, "acme", "prod")


def test_unlock_by_holder_is_200_and_releases(client, auth):
    assert do_lock(client, "lock-a", auth).status_code == 200
    response = do_unlock(client, lock_info("lock-a"), auth)
    assert response.status_code == 200
    assert response.data == b""
    assert do_lock(client, "lock-b", auth).status_code == 200


def test_unlock_when_not_locked_is_200(client, auth):
    assert do_lock(client, "lock-a", auth).status_code == 200
    assert do_unlock(client, lock_info("lock-a"), auth).status_code == 200
    # A retried unlock must not fail.
    response = do_unlock(client, lock_info("lock-a"), auth)
    assert response.status_code == 200
    assert response.data == b""


def test_unlock_with_other_id_is_409_with_holders_lockinfo(client, auth):
    assert do_lock(client, "lock-a", auth).status_code == 200
    response = do_unlock(client, lock_info("lock-b"), auth)
    assert response.status_code == 409
    assert response.data == lock_info("lock-a")
    assert do_lock(client, "lock-b", auth).status_code == 423


def test_unlock_with_an_empty_body_forces(client, auth):
    # What `terraform force-unlock` sends: the ID typed on its command line never reaches the backend.
    assert do_lock(client, "lock-a", auth).status_code == 200
    assert do_unlock(client, b"", auth).status_code == 200
    assert do_lock(client, "lock-b", auth).status_code == 200


@pytest.mark.parametrize("body", [b"{}", b'{"Who": "terraform force-unlock"}'], ids=["{}", "no-id"])
def test_unlock_with_a_body_without_id_is_400_and_forces_nothing(client, auth, body):
    assert do_lock(client, "lock-a", auth).status_code == 200
    response = do_unlock(client, body, auth)
    assert response.status_code == 400
    assert do_lock(client, "lock-b", auth).status_code == 423


def test_force_unlock_when_not_locked_is_200(client, auth):
    assert do_lock(client, "lock-a", auth).status_code == 200
    assert do_unlock(client, lock_info("lock-a"), auth).status_code == 200
    assert do_unlock(client, b"", auth).status_code == 200


def test_force_unlock_disabled_is_409_with_holder(make_app):
    no_force = make_app(force_unlock_enabled=False)
    auth = basic(make_token(no_force))
    client = no_force.test_client()
    assert do_lock(client, "lock-a", auth).status_code == 200
    response = do_unlock(client, b"", auth)
    assert response.status_code == 409
    assert response.data == lock_info("lock-a")
    assert do_lock(client, "lock-b", auth).status_code == 423
    # The holder can still unlock normally.
    assert do_unlock(client, lock_info("lock-a"), auth).status_code == 200


def test_force_unlock_with_read_only_token_is_403(app, client, auth):
    assert do_lock(client, "lock-a", auth).status_code == 200
    read_only = basic(make_token(app, subject="reader", scope="read-only"))
    response = do_unlock(client, b"", read_only)
    assert response.status_code == 403
    assert response.json["error"]
    assert do_lock(client, "lock-b", auth).status_code == 423


# --- authentication and authorization ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "LOCK", "UNLOCK"])
def test_no_credentials_is_401_with_basic_challenge(client, method):
    response = client.open(PATH, method=method, data=state(1) if method in ("POST", "PUT") else b"")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="statesman"'
    assert response.json["error"]


@pytest.mark.parametrize(
    "headers",
    [
        basic("stm_" + "x" * 40),
        bearer("stm_" + "x" * 40),
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + base64.b64encode(b"terraform").decode()},
        {"Authorization": "Digest username=terraform"},
    ],
    ids=["basic-wrong-token", "bearer-wrong-token", "basic-garbage", "basic-no-password", "other-scheme"],
)
def test_wrong_credentials_are_401(app, client, headers):
    make_token(app)
    response = client.get(PATH, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="statesman"'


def test_other_org_is_404_without_leaking_existence(app, client, auth):
    # "globex" exists with state; "nosuch" does not. Both names have six letters so responses compare bytewise.
    globex = basic(make_token(app, org="globex", subject="gus"))
    assert client.post("/state/globex/prod", data=state(1), headers=globex).status_code == 200
    for method, body in (
        ("GET", b""),
        ("POST", state(2)),
        ("PUT", state(2)),
        ("DELETE", b""),
        ("LOCK", lock_info("x")),
        ("UNLOCK", lock_info("x")),
    ):
        existing = client.open("/state/globex/prod", method=method, data=body, headers=auth)
        missing = client.open("/state/nosuch/prod", method=method, data=body, headers=auth)
        assert existing.status_code == 404, method
        assert missing.status_code == 404, method
        assert existing.data.replace(b"globex", b"nosuch") == missing.data, method
    assert client.get("/state/globex/prod", headers=globex).data == state(1)
    assert not workspace_exists(app, "nosuch", "prod")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", PATH, state(2)),
        ("PUT", PATH, state(2)),
        ("DELETE", PATH, b""),
        ("LOCK", PATH, lock_info("reader-lock")),
        ("POST", PATH + "/lock", lock_info("reader-lock")),
        ("UNLOCK", PATH, lock_info("reader-lock")),
    ],
    ids=["post", "put", "delete", "lock", "gitlab-lock", "unlock"],
)
def test_read_only_token_writing_is_403(app, client, auth, method, path, body):
    assert client.post(PATH, data=state(1), headers=auth).status_code == 200
    read_only = basic(make_token(app, subject="reader", scope="read-only"))
    assert client.get(PATH, headers=read_only).data == state(1)
    response = client.open(path, method=method, data=body, headers=read_only)
    assert response.status_code == 403
    assert response.json["error"]
    assert client.get(PATH, headers=auth).data == state(1)
    assert version_serials(app) == [1]
    assert do_lock(client, "owner-lock", auth).status_code == 200


# --- workspace creation -----------------------------------------------------------------------------------


def test_first_write_creates_the_workspace(app, client, auth):
    assert not workspace_exists(app, "acme", "fresh")
    assert client.post("/state/acme/fresh", data=state(1), headers=auth).status_code == 200
    assert workspace_exists(app, "acme", "fresh")
    assert ("workspace.create", "ok") in actions(app)


def test_first_lock_creates_the_workspace(app, client, auth):
    assert do_lock(client, "l1", auth, path="/state/acme/fresh").status_code == 200
    assert workspace_exists(app, "acme", "fresh")
    assert do_lock(client, "l2", auth, path="/state/acme/fresh").status_code == 423


@pytest.mark.parametrize("method", ["POST", "LOCK"])
def test_read_only_token_cannot_create_a_workspace(app, client, method):
    read_only = basic(make_token(app, subject="reader", scope="read-only"))
    body = state(1) if method == "POST" else lock_info("l1")
    response = client.open("/state/acme/fresh", method=method, data=body, headers=read_only)
    assert response.status_code in (403, 404)
    assert not workspace_exists(app, "acme", "fresh")


def test_invalid_body_does_not_create_the_workspace(app, client, auth):
    assert client.post("/state/acme/fresh", data=b"[]", headers=auth).status_code == 400
    assert not workspace_exists(app, "acme", "fresh")


# --- GitLab-style lock routes -------------------------------------------------------------------------------


def test_gitlab_style_lock_routes(client, auth):
    lock_path = PATH + "/lock"
    response = client.post(lock_path, data=lock_info("gl-1"), headers=auth)
    assert response.status_code == 200
    # The lock is the same lock the LOCK method sees.
    assert do_lock(client, "other", auth).status_code == 423
    conflict = client.post(lock_path, data=lock_info("other"), headers=auth)
    assert conflict.status_code == 423
    assert conflict.data == lock_info("gl-1")
    assert client.post(PATH + "?ID=gl-1", data=state(1), headers=auth).status_code == 200
    wrong = client.delete(lock_path, data=lock_info("other"), headers=auth)
    assert wrong.status_code == 409
    assert wrong.data == lock_info("gl-1")
    assert client.delete(lock_path, data=lock_info("gl-1"), headers=auth).status_code == 200
    assert do_lock(client, "other", auth).status_code == 200
    # DELETE .../lock with an empty body is a force-unlock.
    assert client.delete(lock_path, data=b"", headers=auth).status_code == 200
    assert client.post(lock_path, data=lock_info("gl-2"), headers=auth).status_code == 200


# --- /v1/backend/<unit> ------------------------------------------------------------------------------------


def test_v1_backend_by_name(app, client, auth):
    unit = "/v1/backend/prod"
    assert client.get(unit, headers=auth).status_code == 404
    assert client.open(unit, method="LOCK", data=lock_info("u1"), headers=auth).status_code == 200
    assert client.post(unit + "?ID=u1", data=state(1), headers=auth).status_code == 200
    conflict = client.open(unit, method="LOCK", data=lock_info("u2"), headers=auth)
    assert conflict.status_code == 423
    assert conflict.data == lock_info("u1")
    assert client.open(unit, method="UNLOCK", data=lock_info("u1"), headers=auth).status_code == 200
    response = client.get(unit, headers=auth)
    assert response.status_code == 200
    assert response.data == state(1)
    # It is the same workspace as /state/acme/prod.
    assert client.get(PATH, headers=auth).data == state(1)


def test_v1_backend_by_id(app, client, auth):
    assert client.post(PATH, data=state(1), headers=auth).status_code == 200
    unit = f"/v1/backend/{workspace_id(app)}"
    assert client.get(unit, headers=auth).data == state(1)
    assert client.open(unit, method="LOCK", data=lock_info("u1"), headers=auth).status_code == 200
    assert do_lock(client, "u2", auth).status_code == 423
    assert client.post(unit + "?ID=u1", data=state(2), headers=auth).status_code == 200
    assert client.open(unit, method="UNLOCK", data=lock_info("u1"), headers=auth).status_code == 200
    assert client.get(PATH, headers=auth).data == state(2)
    assert version_serials(app) == [2, 1]
    with app.app_context():
        names = [w.name for w in workspaces.list_workspaces(orgs.require_org("acme"))[0]]
    assert names == ["prod"]


def test_v1_backend_is_confined_to_the_tokens_org(app, client, auth):
    assert client.post(PATH, data=state(1), headers=auth).status_code == 200
    unit_id = workspace_id(app)
    globex = basic(make_token(app, org="globex", subject="gus"))
    assert client.get(f"/v1/backend/{unit_id}", headers=globex).status_code == 404
    assert client.get("/v1/backend/prod", headers=globex).status_code == 404
    assert client.get("/v1/backend/prod?org=acme", headers=globex).status_code == 404
    # Whatever a LOCK by another org's id does in the caller's own org, it never touches acme's workspace.
    client.open(f"/v1/backend/{unit_id}", method="LOCK", data=lock_info("g"), headers=globex)
    assert client.post(f"/v1/backend/{unit_id}", data=state(9), headers=globex).status_code != 500
    assert do_lock(client, "mine", auth).status_code == 200
    assert client.get(PATH, headers=auth).data == state(1)
    assert version_serials(app) == [1]


# --- DELETE ------------------------------------------------------------------------------------------------


def test_delete_state(app, client, auth, config):
    assert client.post(PATH, data=state(1), headers=auth).status_code == 200
    assert client.post(PATH, data=state(2), headers=auth).status_code == 200
    ws_dir = Path(config.storage_fs_dir) / workspace_id(app)
    assert len(list(ws_dir.glob("*.tfstate"))) == 2
    response = client.delete(PATH, headers=auth)
    assert response.status_code == 200
    assert client.get(PATH, headers=auth).status_code == 404
    assert not workspace_exists(app, "acme", "prod")
    assert list(ws_dir.glob("*.tfstate")) == []
    assert ("workspace.delete", "ok") in actions(app)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(StateVersion)) == 0
    # A new first write starts a fresh history.
    assert client.post(PATH, data=state(0, lineage="other"), headers=auth).status_code == 200


def test_delete_refused_while_locked_by_someone_else(app, client, auth):
    assert client.post(PATH, data=state(1), headers=auth).status_code == 200
    assert do_lock(client, "holder", auth).status_code == 200
    response = client.delete(PATH, headers=auth)
    assert response.status_code == 409
    assert response.json["lock"]["ID"] == "holder"
    assert client.delete(PATH + "?ID=not-holder", headers=auth).status_code == 409
    assert client.get(PATH, headers=auth).data == state(1)
    assert do_unlock(client, lock_info("holder"), auth).status_code == 200
    assert client.delete(PATH, headers=auth).status_code == 200
    assert client.get(PATH, headers=auth).status_code == 404


# --- retention -----------------------------------------------------------------------------------------------


def test_retention_keeps_max_versions(make_app, config):
    keep_three = make_app(max_versions=3)
    auth = basic(make_token(keep_three))
    client = keep_three.test_client()
    for serial in range(1, 6):
        assert client.post(PATH, data=state(serial), headers=auth).status_code == 200
    assert version_serials(keep_three) == [5, 4, 3]
    with keep_three.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(StateVersion)) == 3
    objects = list((Path(config.storage_fs_dir) / workspace_id(keep_three)).glob("*.tfstate"))
    assert len(objects) == 3
    response = client.get(PATH, headers=auth)
    assert response.status_code == 200
    assert response.data == state(5)


# --- auditing -------------------------------------------------------------------------------------------


def test_every_write_lock_unlock_and_force_unlock_is_audited(app, client, auth):
    assert do_lock(client, "a1", auth).status_code == 200
    assert client.post(PATH + "?ID=a1", data=state(1), headers=auth).status_code == 200
    assert do_unlock(client, lock_info("a1"), auth).status_code == 200
    assert do_lock(client, "a2", auth).status_code == 200
    assert do_lock(client, "a3", auth).status_code == 423
    assert do_unlock(client, b"", auth).status_code == 200
    assert client.post(PATH, data=state(0), headers=auth).status_code == 409
    recorded = actions(app)
    assert recorded == [
        ("workspace.create", "ok"),
        ("lock", "ok"),
        ("state.write", "ok"),
        ("unlock", "ok"),
        ("lock", "ok"),
        ("lock", "conflict"),
        ("force_unlock", "ok"),
        ("state.write", "conflict"),
    ]
    events = [e for e in audit_events(app) if e.workspace_name == "prod"]
    assert all(e.actor == "alice" for e in events)
    assert all(e.request_id for e in events)
    force = next(e for e in events if e.action == "force_unlock")
    assert force.detail["holder_id"] == "a2"


def test_audit_and_logs_never_contain_token_or_state(make_app, caplog):
    app = make_app(log_level="debug")
    client = app.test_client()
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="statesman")
    # SQL statements with their parameters: whatever reaches the database layer would show here too.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    token = make_token(app)
    auth = basic(token)
    secret_value = "very-secret-output-value-7f3a9c"
    body = state(1, outputs={"password": {"value": secret_value, "type": "string", "sensitive": True}})
    second = state(2, outputs={"password": {"value": secret_value + "-2", "type": "string", "sensitive": True}})
    assert do_lock(client, "l1", auth).status_code == 200
    assert client.post(PATH + "?ID=l1", data=body, headers=auth).status_code == 200
    assert client.post(PATH, data=second, headers=auth).status_code == 409
    assert client.post(PATH + "?ID=l1", data=state(0), headers=auth).status_code == 409
    assert (
        client.post(PATH + "?ID=l1", data=second, headers={**auth, "Content-MD5": md5_header(b"x")}).status_code == 400
    )
    assert client.get(PATH, headers=auth).data == body
    assert client.get(PATH, headers=bearer(token)).data == body
    assert do_unlock(client, b"", auth).status_code == 200
    assert (
        client.post(PATH + "?force=true", data=state(1, lineage="x", secret=secret_value), headers=auth).status_code
        == 200
    )
    assert client.get(PATH, headers=basic(token + "wrong")).status_code == 401

    events = audit_events(app)
    assert events
    for event in events:
        text = json.dumps(
            [
                event.actor,
                event.action,
                event.outcome,
                event.detail,
                event.workspace_name,
                event.org_id,
                event.request_id,
            ],
            default=str,
        )
        assert token not in text
        assert secret_value not in text
        assert '"lineage"' not in text
    assert caplog.records, "nothing was logged: the check below would be vacuous"
    assert token not in caplog.text
    assert secret_value not in caplog.text
    with app.app_context():
        versions = list(db.session.scalars(db.select(StateVersion)))
        assert versions
        for version in versions:
            assert secret_value not in json.dumps(version.outputs)
        first = next(v for v in versions if v.serial == 1 and v.lineage == "lineage-1")
        assert first.outputs["password"] == {"type": "string", "sensitive": True}
