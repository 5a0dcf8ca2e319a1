"""Malformed requests get a 4xx with a message, and never change the stored state or the lock."""

from __future__ import annotations

import io
import json

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import Workspace
from app.repositories import orgs, workspaces
from app.repositories.state_versions import list_versions
from tests.factories import basic, lock_info, make_token

PATH = "/state/acme/prod"
NAME_RULE = "1-90 characters"


def state(serial: int, **extra: object) -> bytes:
    return json.dumps(
        {"version": 4, "serial": serial, "lineage": "bad-input", "outputs": {}, "resources": [], **extra}
    ).encode()


CURRENT = state(3)


@pytest.fixture
def auth(app: Flask, client: FlaskClient) -> dict[str, str]:
    """A token for acme, and acme/prod holding ``CURRENT`` (serial 3, the only version)."""
    headers = basic(make_token(app))
    assert client.post(PATH, data=CURRENT, headers=headers).status_code == 200
    return headers


def snapshot(app: Flask, client: FlaskClient, auth: dict[str, str]) -> tuple[bytes, list[int], int]:
    """What must not change: the current bytes, the versions and the number of workspaces."""
    with app.app_context():
        found = workspaces.get_workspace(orgs.require_org("acme"), "prod")
        assert found is not None
        versions, _ = list_versions(found)
        count = db.session.scalar(db.select(db.func.count()).select_from(Workspace)) or 0
    return client.get(PATH, headers=auth).data, [v.serial for v in versions], count


def assert_unchanged(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    assert snapshot(app, client, auth) == (CURRENT, [3], 1)
    # Nor was a lock left behind.
    assert client.open(PATH, method="LOCK", data=lock_info("probe"), headers=auth).status_code == 200
    assert client.open(PATH, method="UNLOCK", data=lock_info("probe"), headers=auth).status_code == 200


def assert_error(response, status: int) -> str:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    message = response.json["error"]
    assert isinstance(message, str) and message
    return message


# --- state bodies ----------------------------------------------------------------------------------------------

BAD_STATES = {
    "empty": b"",
    "whitespace": b"   \n",
    "not-json": b"this is not json",
    "json-array": b"[" + CURRENT + b"]",
    "json-string": b'"{\\"serial\\": 4}"',
    "json-number": b"4",
    "json-null": b"null",
    "truncated": state(4)[:-7],
    "trailing-garbage": state(4) + b" garbage",
    "two-documents": state(4) + state(5),
    "missing-serial": json.dumps({"version": 4, "lineage": "bad-input"}).encode(),
    "negative-serial": state(-4),
    "string-serial": json.dumps({"version": 4, "serial": "4", "lineage": "bad-input"}).encode(),
    "numeric-lineage": json.dumps({"version": 4, "serial": 4, "lineage": 7}).encode(),
    "invalid-utf8": b'{"version": 4, "serial": 4, "lineage": "bad-input", "x": "\xff\xfe"}',
    "utf16": state(4).decode().encode("utf-16"),
}


@pytest.mark.parametrize("body", list(BAD_STATES.values()), ids=list(BAD_STATES))
def test_bad_state_body_is_400(app, client, auth, body):
    for method in ("POST", "PUT"):
        response = client.open(PATH, method=method, data=body, headers={**auth, "Content-Type": "application/json"})
        assert_error(response, 400)
    assert_error(client.post("/v1/backend/prod", data=body, headers=auth), 400)
    assert_unchanged(app, client, auth)


@pytest.mark.parametrize(
    "content_md5",
    ["AAAAAAAAAAAAAAAAAAAAAA==", "not base64 at all", "ZGlmZmVyZW50", "0123456789abcdef0123456789abcdef"],
    ids=["zero-digest", "garbage", "short", "hex-instead-of-base64"],
)
def test_wrong_content_md5_is_400(app, client, auth, content_md5):
    response = client.post(PATH, data=state(4), headers={**auth, "Content-MD5": content_md5})
    message = assert_error(response, 400)
    assert "MD5" in message
    assert_unchanged(app, client, auth)


def test_bad_body_to_a_new_workspace_creates_nothing(app, client, auth):
    for body in (b"", b"[]", b"{", state(-1)):
        assert_error(client.post("/state/acme/fresh", data=body, headers=auth), 400)
    assert_unchanged(app, client, auth)


# --- lock bodies -----------------------------------------------------------------------------------------------

BAD_LOCKS = {
    "empty": b"",
    "not-json": b"ID=abc",
    "truncated": lock_info("x")[:-3],
    "json-array": b'[{"ID": "x"}]',
    "json-string": b'"x"',
    "json-null": b"null",
    "missing-id": b'{"Operation": "OperationTypeApply", "Who": "w"}',
    "empty-id": b'{"ID": ""}',
    "blank-id": b'{"ID": "   "}',
    "numeric-id": b'{"ID": 12}',
    "object-id": b'{"ID": {"a": 1}}',
    "numeric-who": b'{"ID": "x", "Who": 5}',
    "list-info": b'{"ID": "x", "Info": ["a"]}',
    "null-version": b'{"ID": "x", "Version": null}',
    "invalid-utf8": b'{"ID": "x\xff"}',
    "trailing-garbage": lock_info("x") + b"}",
}


def test_malformed_lockinfo_is_400(app, client, auth):
    for label, body in BAD_LOCKS.items():
        for path, method in ((PATH, "LOCK"), (PATH + "/lock", "POST"), ("/v1/backend/prod", "LOCK")):
            response = client.open(path, method=method, data=body, headers=auth)
            assert response.status_code == 400, (label, path, method, response.status_code)
            assert response.json["error"]
    assert_unchanged(app, client, auth)


def test_malformed_lockinfo_on_a_held_lock_is_400_and_keeps_the_holder(app, client, auth):
    assert client.open(PATH, method="LOCK", data=lock_info("holder"), headers=auth).status_code == 200
    assert_error(client.open(PATH, method="LOCK", data=b'{"ID": 1}', headers=auth), 400)
    assert_error(client.open(PATH, method="UNLOCK", data=b"not json", headers=auth), 400)
    assert_error(client.delete(PATH + "/lock", data=b"{broken", headers=auth), 400)
    conflict = client.open(PATH, method="LOCK", data=lock_info("other"), headers=auth)
    assert conflict.status_code == 423
    assert conflict.data == lock_info("holder")


def test_malformed_lockinfo_does_not_create_the_workspace(app, client, auth):
    assert_error(client.open("/state/acme/fresh", method="LOCK", data=b"[]", headers=auth), 400)
    assert_unchanged(app, client, auth)


def test_oversized_lockinfo_is_refused(app, client, auth):
    body = json.dumps({"ID": "x", "Info": "i" * (70 * 1024)}).encode()
    response = client.open(PATH, method="LOCK", data=body, headers=auth)
    assert 400 <= response.status_code < 500
    assert response.json["error"]
    assert_unchanged(app, client, auth)


# --- names -------------------------------------------------------------------------------------------------------

BAD_NAMES = {
    "leading-dot": ".prod",
    "leading-dash": "-prod",
    "leading-underscore": "_prod",
    "91-characters": "a" * 91,
    "space": "my%20ws",
    "unicode": "pr%C3%B8d",
    "emoji": "%F0%9F%9A%80",
    "colon": "a:b",
    "at-sign": "a@b",
    "backslash": "a%5Cb",
    "percent": "a%25b",
    "tilde": "a~b",
    "plus": "a+b",
    "star": "a*b",
    "trailing-newline": "prod%0A",
    "trailing-crlf": "prod%0D%0A",
}


@pytest.mark.parametrize("where", ["workspace", "org"])
def test_bad_names_are_400_naming_the_rule(app, client, auth, where):
    for label, name in BAD_NAMES.items():
        path = f"/state/acme/{name}" if where == "workspace" else f"/state/{name}/prod"
        for method, body in (
            ("GET", b""),
            ("POST", state(1)),
            ("PUT", state(1)),
            ("LOCK", lock_info("n")),
            ("UNLOCK", lock_info("n")),
            ("DELETE", b""),
        ):
            message = assert_error(client.open(path, method=method, data=body, headers=auth), 400)
            assert NAME_RULE in message, (label, method)
            assert where in message, (label, method)
        assert NAME_RULE in assert_error(client.post(path + "/lock", data=lock_info("n"), headers=auth), 400)
        assert NAME_RULE in assert_error(client.delete(path + "/lock", data=b"", headers=auth), 400)
    assert_unchanged(app, client, auth)


def test_90_characters_is_fine(app, client, auth):
    name = "a" * 89 + "9"
    assert client.post(f"/state/acme/{name}", data=state(1), headers=auth).status_code == 200
    assert client.get(f"/state/acme/{name}", headers=auth).data == state(1)


def test_names_are_case_sensitive(app, client, auth):
    assert client.get("/state/acme/PROD", headers=auth).status_code == 404
    assert client.post("/state/acme/PROD", data=state(1), headers=auth).status_code == 200
    assert client.get("/state/acme/PROD", headers=auth).data == state(1)
    assert client.get(PATH, headers=auth).data == CURRENT


def test_slashes_cannot_reach_the_view(app, client, auth):
    # Flask routes on the decoded path, so an encoded slash makes an extra segment: no route, no view, 404/405.
    for path in (
        "/state/acme/a%2Fb",
        "/state/acme/a/b/c",
        "/state/acme/prod/extra",
        "/state/acme",
        "/state/acme/",
        "/state//prod",
        "/state/a%2Fb/prod",
    ):
        for method, body in (("GET", b""), ("POST", state(4)), ("LOCK", lock_info("s"))):
            response = client.open(path, method=method, data=body, headers=auth)
            assert response.status_code in (404, 405), (path, method, response.status_code)
            assert response.json["error"]
    assert_unchanged(app, client, auth)


# --- sizes -------------------------------------------------------------------------------------------------------


@pytest.fixture
def small(make_app) -> tuple[Flask, FlaskClient, dict[str, str]]:
    application = make_app(max_state_size=1000)
    client = application.test_client()
    headers = basic(make_token(application))
    assert client.post(PATH, data=CURRENT, headers=headers).status_code == 200
    return application, client, headers


def oversized() -> bytes:
    return state(4, padding="p" * 5000)


def test_oversized_body_with_content_length_is_413(small):
    application, client, auth = small
    body = oversized()
    response = client.post(PATH, data=body, headers=auth)
    assert response.request.content_length == len(body)
    message = assert_error(response, 413)
    assert "1000" in message
    assert_unchanged(application, client, auth)


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_oversized_chunked_body_without_content_length_is_413(small, method):
    application, client, auth = small
    response = client.open(
        PATH,
        method=method,
        input_stream=io.BytesIO(oversized()),
        headers={**auth, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.request.content_length is None  # chunked: the server cannot know the size up front
    message = assert_error(response, 413)
    assert "1000" in message
    assert_unchanged(application, client, auth)


def test_small_chunked_body_is_accepted(small):
    _, client, auth = small
    response = client.post(
        PATH,
        input_stream=io.BytesIO(state(4)),
        headers={**auth, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200, response.json
    assert client.get(PATH, headers=auth).data == state(4)


def test_oversized_body_without_credentials_is_401(small):
    application, client, auth = small
    response = client.post(PATH, data=oversized())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="statesman"'
    assert_unchanged(application, client, auth)


def test_oversized_body_to_a_new_workspace_creates_nothing(small):
    application, client, auth = small
    assert_error(client.post("/state/acme/fresh", data=oversized(), headers=auth), 413)
    assert_unchanged(application, client, auth)


# --- methods -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [PATH, PATH + "/lock", "/v1/backend/prod"])
def test_unknown_methods_are_405_with_json_message(app, client, auth, path):
    for method in ("PATCH", "PROPFIND", "MKCOL", "COPY", "MOVE", "TRACE", "BREW"):
        response = client.open(path, method=method, data=state(4), headers=auth)
        message = assert_error(response, 405)
        assert method in message
        allowed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert method not in allowed
        assert allowed & {"GET", "POST", "LOCK", "DELETE"}
    assert_unchanged(app, client, auth)


def test_get_on_the_gitlab_lock_route_is_405(app, client, auth):
    response = client.get(PATH + "/lock", headers=auth)
    assert_error(response, 405)
    assert {"POST", "DELETE"} <= {m.strip() for m in response.headers["Allow"].split(",")}


# --- text the databases and lock drivers cannot hold ------------------------------------------------------------

NUL_PATHS = ["/state/a%00/prod", "/state/acme/a%00", "/state/acme/%00", "/v1/backend/%00", "/v1/backend/a%00b"]


def test_nul_bytes_in_the_path_are_400(app, client, auth):
    for path in NUL_PATHS:
        for method, body in (
            ("GET", b""),
            ("POST", state(4)),
            ("PUT", state(4)),
            ("LOCK", lock_info("n")),
            ("UNLOCK", b""),
            ("DELETE", b""),
        ):
            message = assert_error(client.open(path, method=method, data=body, headers=auth), 400)
            assert "NUL" in message, (path, method)
    assert_unchanged(app, client, auth)


def test_nul_bytes_in_query_arguments_are_400(app, client, auth):
    for path, method, body in (
        (PATH + "?ID=%00", "POST", state(4)),
        (PATH + "?ID=a%00", "DELETE", b""),
        ("/v1/backend/prod?org=%00", "GET", b""),
        ("/v1/backend/prod?org=acme%00", "LOCK", lock_info("n")),
        (PATH + "?x%00=1", "GET", b""),
    ):
        message = assert_error(client.open(path, method=method, data=body, headers=auth), 400)
        assert "NUL" in message, (path, method)
    assert_unchanged(app, client, auth)


def test_nul_bytes_in_headers_are_400(app, client, auth):
    response = client.get(PATH, headers={**auth, "X-Request-ID": "a\x00b"})
    assert "NUL" in assert_error(response, 400)
    assert_unchanged(app, client, auth)


# --- lock IDs ------------------------------------------------------------------------------------------------------

LOCK_ID_RULE = "1-255 printable characters"
# (the ID as JSON text, a word of the message): lone surrogates and NUL are refused by the JSON parser itself
BAD_LOCK_IDS = {
    "lone-surrogate": ("\\ud800", "surrogate"),
    "nul": ("a\\u0000b", "NUL"),
    "newline": ("a\\nb", LOCK_ID_RULE),
    "escape": ("\\u001b[31m", LOCK_ID_RULE),
    "line-separator": ("a\\u2028b", LOCK_ID_RULE),
    "blank": ("   ", LOCK_ID_RULE),
    "256-characters": ("x" * 256, LOCK_ID_RULE),
}


@pytest.fixture(params=["local", "memory", "redis", "postgres"])
def any_lock_driver(request, make_app):
    """The app on each lock driver, with a token and acme/prod holding ``CURRENT``."""
    from tests.drivers.lock_services import postgres_config, redis_config

    changes: dict[str, object] = {"lock_backend": request.param}
    if request.param == "redis":
        found = redis_config(request)
        changes.update(redis_url=found.redis_url, redis_key_prefix=found.redis_key_prefix)
    elif request.param == "postgres":
        found = postgres_config(request)
        changes.update(postgres_connection=found.postgres_connection, lock_postgres_table=found.lock_postgres_table)
    application = make_app(**changes)
    client = application.test_client()
    headers = basic(make_token(application))
    assert client.post(PATH, data=CURRENT, headers=headers).status_code == 200
    return application, client, headers


def raw_lock(lock_id_json: str) -> bytes:
    return b'{"ID": "' + lock_id_json.encode() + b'", "Operation": "OperationTypeApply", "Who": "w@h"}'


def test_bad_lock_ids_are_400_on_every_lock_driver(any_lock_driver):
    application, client, auth = any_lock_driver
    for label, (lock_id, word) in BAD_LOCK_IDS.items():
        for path, method in ((PATH, "LOCK"), (PATH + "/lock", "POST"), ("/v1/backend/prod", "LOCK")):
            response = client.open(path, method=method, data=raw_lock(lock_id), headers=auth)
            assert word in assert_error(response, 400), (label, path, method)
        for path, method in ((PATH, "UNLOCK"), (PATH + "/lock", "DELETE"), ("/v1/backend/prod", "UNLOCK")):
            response = client.open(path, method=method, data=raw_lock(lock_id), headers=auth)
            assert word in assert_error(response, 400), (label, path, method)
    # Nothing was poisoned: the lock still works with every driver.
    assert_unchanged(application, client, auth)


def test_255_printable_characters_are_a_lock_id(any_lock_driver):
    _, client, auth = any_lock_driver
    for lock_id in ("x" * 255, "id with spaces", "ünïcødé-ロック"):
        assert client.open(PATH, method="LOCK", data=lock_info(lock_id), headers=auth).status_code == 200
        assert client.post(PATH, query_string={"ID": lock_id}, data=state(4), headers=auth).status_code == 200
        assert client.open(PATH, method="UNLOCK", data=lock_info(lock_id), headers=auth).status_code == 200
        assert client.post(PATH, data=CURRENT, headers=auth, query_string={"force": "true"}).status_code == 200


def test_bad_lock_id_in_the_write_query_is_400(app, client, auth):
    for lock_id in ("a\nb", "x" * 256, "\x1b[31m"):
        for method in ("POST", "DELETE"):
            response = client.open(PATH, method=method, query_string={"ID": lock_id}, data=state(4), headers=auth)
            assert LOCK_ID_RULE in assert_error(response, 400), (lock_id, method)
    assert_unchanged(app, client, auth)


BAD_UNLOCK_BODIES = {
    "numeric-id": b'{"ID": 5}',
    "array": b"[]",
    "string": b'"x"',
    "null": b"null",
    "number": b"5",
    "wrong-case-key": b'{"Id": "holder"}',
    "no-id": b'{"Operation": "OperationTypeApply"}',
    "empty-object": b"{}",
    "empty-id": b'{"ID": ""}',
    "null-id": b'{"ID": null}',
    "lone-surrogate": b'{"ID": "\\ud800"}',
}


@pytest.mark.parametrize("body", list(BAD_UNLOCK_BODIES.values()), ids=list(BAD_UNLOCK_BODIES))
def test_malformed_unlock_body_is_400_not_a_force_unlock(app, client, auth, body):
    assert client.open(PATH, method="LOCK", data=lock_info("holder"), headers=auth).status_code == 200
    for path, method in ((PATH, "UNLOCK"), (PATH + "/lock", "DELETE"), ("/v1/backend/prod", "UNLOCK")):
        assert_error(client.open(path, method=method, data=body, headers=auth), 400)
    conflict = client.open(PATH, method="LOCK", data=lock_info("other"), headers=auth)
    assert conflict.status_code == 423
    assert conflict.data == lock_info("holder")


def test_only_an_empty_unlock_body_is_a_force_unlock(app, client, auth):
    for body in (b"", b"  \n"):
        assert client.open(PATH, method="LOCK", data=lock_info("holder"), headers=auth).status_code == 200
        assert client.open(PATH, method="UNLOCK", data=body, headers=auth).status_code == 200
    assert_unchanged(app, client, auth)


def test_a_redis_lock_record_written_by_another_program_gives_no_driver_text(request, make_app):
    """A Lua error (here: JSON the script cannot decode) is a 503 naming the backend, with Redis' words only logged."""
    import redis as redis_client

    from tests.drivers.lock_services import redis_config
    from tests.services import REDIS_URL

    found = redis_config(request)
    application = make_app(lock_backend="redis", redis_url=found.redis_url, redis_key_prefix=found.redis_key_prefix)
    client = application.test_client()
    auth = basic(make_token(application))
    assert client.post(PATH, data=CURRENT, headers=auth).status_code == 200
    with application.app_context():
        workspace_id = workspaces.get_workspace(orgs.require_org("acme"), "prod").id
    raw = redis_client.Redis.from_url(REDIS_URL)
    try:
        raw.set(found.redis_key_prefix + workspace_id, b'{"lock_id": "\\ud800", "info": "{}", "created_at": "x"}')
    finally:
        raw.close()
    response = client.open(PATH, method="UNLOCK", data=lock_info("mine"), headers=auth)
    assert response.status_code == 503
    message = response.json["error"]
    assert "redis lock" in message
    for word in ("Lua", "lua", "cjson", "script", "user_script", "@"):
        assert word not in message, message
