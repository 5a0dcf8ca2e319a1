"""Malformed input to the management API gets a 4xx ``{"error","message"}``, never a 500 or 503."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import bearer
from tests.internal.conftest import Ui, state, token_for

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"name": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}"


def assert_error(response: TestResponse, status: int, *words: str) -> str:
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.is_json
    body = response.json
    assert isinstance(body["error"], str) and body["error"] and body["message"], body
    for word in words:
        assert word in body["message"], body["message"]
    return str(body["message"])


@pytest.fixture
def unit(acme: Ui) -> Ui:
    """acme with unit prod holding serial 1."""
    assert acme.post("/units", {"name": "prod"}).status_code == 201
    assert acme.post("/units/prod/upload", data=state(1)).status_code == 200
    return acme


@pytest.fixture
def v1(client: FlaskClient, acme: Ui) -> dict[str, str]:
    """Token headers of alice, admin of acme (the /v1 door)."""
    return bearer(token_for(client.application, "acme", "alice"))


# --- NUL bytes ---------------------------------------------------------------------------------------------------


def test_nul_bytes_in_paths_are_400(client: FlaskClient, unit: Ui, v1: dict[str, str]) -> None:
    for path in ("/units/%00", "/units/a%00b", "/units/%00/lock", "/units/%00/versions", "/rbac/roles/%00"):
        for method in ("GET", "POST", "DELETE", "PATCH"):
            assert_error(unit.call(method, path), 400, "NUL")
            assert_error(client.open("/v1" + path, method=method, headers=v1), 400, "NUL")
    assert_error(unit.get("/users/a%00"), 400, "NUL")


def test_nul_bytes_in_query_arguments_are_400(client: FlaskClient, unit: Ui, v1: dict[str, str]) -> None:
    for query in ("prefix=%00", "page=%00", "x=%00"):
        assert_error(unit.get(f"/units?{query}"), 400, "NUL")
    for query in ("unit=%00", "user=a%00", "action=%00", "since=%00"):
        assert_error(unit.get(f"/audit?{query}"), 400, "NUL")
    assert_error(client.get("/v1/units?org=%00", headers=v1), 400, "NUL")
    assert_error(client.get("/v1/units?org=acme%00", headers=v1), 400, "NUL")


def test_nul_bytes_in_headers_are_400(unit: Ui) -> None:
    for header in ("X-User-ID", "X-Email", "X-Org-ID", "X-Request-ID"):
        caller = Ui(unit.client, unit.user, unit.email, unit.org, {header: "a\x00b"})
        assert_error(caller.get("/units"), 400, "NUL")


NUL_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/units", {"name": "a\x00"}),
    ("POST", "/units", {"name": "prod2", "tfe_working_directory": "a\x00"}),
    ("PATCH", "/units/prod", {"tfe_terraform_version": "1\x00"}),
    ("POST", "/users", {"subject": "alice", "email": "a\x00@example.com"}),
    ("POST", "/orgs", {"name": "a\x00"}),
    ("POST", "/orgs/sync", {"name": "beta", "display_name": "B\x00", "external_org_id": "org_beta"}),
    ("POST", "/rbac/roles", {"name": "r\x00"}),
    ("POST", "/rbac/permissions", {"name": "p", "rules": [{"actions": ["unit.read"], "resources": ["\x00"]}]}),
    ("POST", "/rbac/assign", {"subject": "a\x00", "role_id": "admin"}),
    ("POST", "/rbac/test", {"subject": "alice", "action": "unit.read", "resource": "\x00"}),
    ("POST", "/units/prod/lock", {"who": "w\x00"}),
    ("POST", "/units/prod/restore", {"version_id": "\x00"}),
]


@pytest.mark.parametrize(("method", "path", "body"), NUL_BODIES, ids=[f"{m} {p}" for m, p, _ in NUL_BODIES])
def test_nul_bytes_in_json_bodies_are_400(unit: Ui, method: str, path: str, body: dict[str, Any]) -> None:
    assert_error(unit.call(method, path, body), 400, "NUL")
    assert unit.get("/units/prod").json["locked"] is False


def test_lone_surrogates_in_json_bodies_are_400(unit: Ui) -> None:
    for path, raw in (("/units", b'{"name": "\\ud800"}'), ("/users", b'{"subject": "\\udfff"}')):
        assert_error(unit.call("POST", path, data=raw), 400)


# --- JSON shapes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["deep-array", "deep-object"])
def test_deeply_nested_json_is_400(client: FlaskClient, unit: Ui, v1: dict[str, str], body: bytes) -> None:
    for method, path in (
        ("POST", "/units"),
        ("PATCH", "/units/prod"),
        ("POST", "/units/prod/lock"),
        ("POST", "/units/prod/unlock"),
        ("POST", "/units/prod/restore"),
        ("POST", "/orgs"),
        ("POST", "/rbac/permissions"),
        ("POST", "/users"),
    ):
        assert_error(unit.call(method, path, data=body), 400, "nest")
        if path != "/orgs":  # creating organizations is refused to tokens before the body is read
            assert_error(client.open("/v1" + path, method=method, data=body, headers=v1), 400, "nest")


def test_moderately_nested_json_is_fine(unit: Ui) -> None:
    nested: object = 1
    for _ in range(30):
        nested = {"a": [nested]}
    response = unit.post("/units", {"name": "nested", "ui_extra": nested})
    assert response.status_code == 201, response.json


BAD_RESTORES = {
    "array": b"[]",
    "string": b'"x"',
    "number": b"5",
    "numeric-timestamp": b'{"timestamp": 5}',
    "list-version-id": b'{"version_id": ["a"]}',
    "object-lock-id": b'{"timestamp": "2026-01-01T00:00:00Z", "lock_id": {"a": 1}}',
    "garbage-timestamp": b'{"timestamp": "yesterday"}',
    "overflowing-timestamp": b'{"timestamp": "9999-12-31T23:59:59-23:59"}',
    "underflowing-timestamp": b'{"timestamp": "0001-01-01T00:00:00+23:59"}',
    "bad-lock-id": b'{"version_id": "{version}", "lock_id": "a\\nb"}',
    "neither": b"{}",
    "trailing-garbage": b'{"version_id": "x"} x',
    "invalid-utf8": b'{"version_id": "\xff"}',
}


@pytest.mark.parametrize("body", list(BAD_RESTORES.values()), ids=list(BAD_RESTORES))
def test_malformed_restore_body_is_400(unit: Ui, body: bytes) -> None:
    version = unit.get("/units/prod/versions").json["versions"][0]["id"]
    assert_error(unit.call("POST", "/units/prod/restore", data=body.replace(b"{version}", version.encode())), 400)
    assert unit.get("/units/prod/versions").json["count"] == 1


# --- times, pages and identity headers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "99999-01-01", "2026-13-01", "%00"]
)
def test_audit_times_out_of_range_are_400(unit: Ui, moment: str) -> None:
    for name in ("since", "until"):
        assert_error(unit.get(f"/audit?{name}={moment}"), 400)


def test_audit_times_at_the_edges_of_the_range_are_fine(unit: Ui) -> None:
    response = unit.get("/audit?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z")
    assert response.status_code == 200, response.json
    assert response.json["total"] > 0


@pytest.mark.parametrize(
    "query",
    [
        "page=4611686018427387904",
        "page=9223372036854775808",
        "page=" + "9" * 5000,
        "page=1000001",
        "page=0",
        "page=-1",
        "page=1.5",
        "page_size=0",
        "page_size=201",
        "page_size=4611686018427387904",
        "page=4611686018427387904&page_size=200",
    ],
)
def test_page_parameters_out_of_range_are_400(client: FlaskClient, unit: Ui, v1: dict[str, str], query: str) -> None:
    for path in ("/units", "/audit"):
        assert_error(unit.get(f"{path}?{query}"), 400, "page")
        assert_error(client.get(f"/v1{path}?{query}", headers=v1), 400, "page")


def test_the_last_allowed_page_is_empty_not_an_error(unit: Ui) -> None:
    response = unit.get("/units?page=1000000&page_size=200")
    assert response.status_code == 200, response.json
    assert response.json["units"] == [] and response.json["total"] == 1


@pytest.mark.parametrize("header", ["X-User-ID", "X-Email"])
def test_identity_headers_over_255_characters_are_400(unit: Ui, header: str) -> None:
    caller = Ui(unit.client, unit.user, unit.email, unit.org, {header: "a" * 256})
    assert_error(caller.get("/units"), 400, header, "255")
    fits = Ui(unit.client, unit.user, unit.email, unit.org, {header: "a" * 255})
    assert fits.get("/health").status_code == 200


# --- lock IDs and unlock bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lock_id", ["\ud800", "a\nb", "\x1b[31m", "x" * 256, "a\u2028b"], ids=["surrogate", "nl", "esc", "256", "ls"]
)
def test_bad_lock_ids_are_400(unit: Ui, lock_id: str) -> None:
    raw = json.dumps({"id": lock_id}).encode()
    word = "surrogate" if lock_id == "\ud800" else "lock ID"  # the JSON parser refuses lone surrogates itself
    assert_error(unit.call("POST", "/units/prod/lock", data=raw), 400, word)
    assert unit.get("/units/prod").json["locked"] is False
    assert unit.post("/units/prod/lock", {"id": "holder"}).status_code == 200
    for method in ("POST", "DELETE"):
        assert_error(unit.call(method, "/units/prod/unlock", data=raw), 400, word)
    if lock_id != "\ud800":  # a URL cannot carry a lone surrogate at all
        assert_error(
            unit.call("POST", "/units/prod/upload", data=state(2), query_string={"if_locked_by": lock_id}), 400
        )
    assert unit.get("/units/prod").json["lock_info"]["id"] == "holder"


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"5", b'{"id": 5}', b'{"id": ["a"]}', b"{", b"null"])
def test_malformed_unlock_body_is_400_not_a_force_unlock(unit: Ui, body: bytes) -> None:
    assert unit.post("/units/prod/lock", {"id": "holder"}).status_code == 200
    assert_error(unit.call("POST", "/units/prod/unlock", data=body), 400)
    assert unit.get("/units/prod").json["lock_info"]["id"] == "holder"
