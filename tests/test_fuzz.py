"""Property: no request, however malformed, gets a 5xx from any of the three APIs.

Requests are built from the app's real routes (every rule of the URL map, its placeholders filled with real
names and ids, id-shaped names, huge numbers, NUL, unicode), with credentials that open the doors (an API token,
Basic as Terraform sends it, the webhook secret with X-User-ID/X-Org-ID) so the examples reach the views rather
than stopping at a 401. Runs on SQLite and PostgreSQL metadata, bounded in examples and wall-clock time.

CI runs a fixed sequence of examples (derandomized, so a red run is reproducible); locally each run draws new ones.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from tests.conftest import close_app, metadata_backends
from tests.factories import basic, bearer, lock_info, make_token

SECRET = "fuzz-webhook-secret"
EXAMPLES = int(os.environ.get("STATESMAN_FUZZ_EXAMPLES", "1000"))
WALL_CLOCK_SECONDS = float(os.environ.get("STATESMAN_FUZZ_SECONDS", "30"))
STATE = json.dumps({"version": 4, "serial": 1, "lineage": "fuzz", "outputs": {}, "resources": []}).encode()
_PLACEHOLDER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


@dataclass
class Target:
    """The app under fuzz, its credentials, and the real names and ids requests may use."""

    client: FlaskClient
    token: str
    routes: list[tuple[str, tuple[str, ...]]]
    known: list[str]


@pytest.fixture(params=metadata_backends("sqlite", "postgres"))
def database_url(request: pytest.FixtureRequest, tmp_path: Any, sqlite_template: Any) -> str:
    """SQLite and PostgreSQL (the metadata backends whose text and integer rules differ the most)."""
    from tests.conftest import empty_tables

    if request.param == "sqlite":
        import shutil

        shutil.copyfile(sqlite_template, tmp_path / "taco.db")
        return f"sqlite:///{tmp_path / 'taco.db'}"
    url: str = request.getfixturevalue("postgres_database")
    empty_tables(url)
    return url


@pytest.fixture
def target(config: Any) -> Any:
    app: Flask = create_app(replace(config, internal_webhook_secret=SECRET, max_state_size=64 * 1024))
    client = app.test_client()
    sync = {"name": "acme", "display_name": "Acme", "external_org_id": "org_acme"}
    webhook = {"Authorization": f"Bearer {SECRET}", "X-User-ID": "alice", "Content-Type": "application/json"}
    assert client.post("/internal/api/orgs/sync", json=sync, headers=webhook).status_code == 201
    token = make_token(app, role=None)  # alice, admin of acme since the sync
    assert client.post("/state/acme/prod", data=STATE, headers=basic(token)).status_code == 200
    unit = client.get("/internal/api/units/prod", headers={**webhook, "X-Org-ID": "org_acme"}).json
    versions = client.get(f"/internal/api/units/{unit['id']}/versions", headers={**webhook, "X-Org-ID": "acme"}).json
    org_id = client.get("/api/v2/organizations/acme", headers=bearer(token)).json["data"]["id"]
    known = ["acme", "prod", "org_acme", "alice", unit["id"], org_id, versions["versions"][0]["id"], "admin"]
    routes = sorted(
        {
            (rule.rule, tuple(sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})))
            for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"
        }
    )
    yield Target(client, token, routes, known)
    close_app(app)


# --- strategies ----------------------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
HUGE = st.sampled_from(["4611686018427387904", "9223372036854775808", "-1", "0", "1e309", "9" * 400, "1.5", "NaN"])
ID_SHAPED = st.sampled_from(
    ["ws-AAAAAAAAAAAAAAAA", "org-AAAAAAAAAAAAAAAA", "sv-AAAAAAAAAAAAAAAA", "user-0", "prj-x", "role-x", "at-x"]
)


def segment(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from(known),
        st.sampled_from(known),
        ID_SHAPED,
        HUGE,
        TEXT,
        st.sampled_from(["\x00", "a\x00b", "é", "🚀", "..", ".", " ", "a" * 300, "%", "tag-x", "-x", "x:y"]),
    )


JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT, st.sampled_from(["\x00", "a" * 300])
)
FIELDS = st.sampled_from(
    [
        "ID", "Id", "id", "Who", "Info", "Operation", "Version", "name", "display_name", "external_org_id",
        "subject", "email", "role_id", "permission_id", "rules", "actions", "resources", "effect", "action",
        "resource", "timestamp", "version_id", "lock_id", "who", "version", "data", "attributes", "type",
        "reason", "serial", "md5", "lineage", "state", "force", "terraform-version", "working-directory",
        "tfe_auto_apply", "tfe_execution_mode", "tag-names", "key", "value", "description", "permissions",
    ]
)  # fmt: skip
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(FIELDS | TEXT, children, max_size=5),
    max_leaves=20,
)


def body() -> st.SearchStrategy[bytes]:
    nested = st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n)
    deep_object = st.integers(60, 5000).map(lambda n: b'{"data": ' + b'{"a": ' * n + b"1" + b"}" * n + b"}")
    return st.one_of(
        st.just(b""),
        JSON_VALUE.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(FIELDS, JSON_VALUE, max_size=6).map(lambda v: json.dumps(v).encode()),
        st.dictionaries(FIELDS, JSON_VALUE).map(lambda v: json.dumps({"data": {"attributes": v}}).encode()),
        nested,
        deep_object,
        st.sampled_from([lock_info("fuzz"), STATE, b'{"ID": "\\ud800"}', b"\xff\xfe", b"null", b'{"a":1} x']),
        st.binary(max_size=64),
    )  # fmt: skip


@st.composite
def requests(draw: st.DrawFn, target: Target) -> dict[str, Any]:
    rule, methods = draw(st.sampled_from(target.routes))
    path = _PLACEHOLDER.sub(lambda _: quote(draw(segment(target.known)), safe=""), rule)
    if draw(st.booleans()):
        path = re.sub(r"^/api/v2", draw(st.sampled_from(["/api/v2", "/tfe/api/v2", "/internal/tfe/api/v2"])), path)
    others = ["GET", "POST", "PUT", "PATCH", "DELETE", "LOCK", "UNLOCK"]
    method = draw(st.sampled_from(others)) if draw(st.integers(0, 4)) == 0 else draw(st.sampled_from(methods))
    query_keys = st.sampled_from(
        ["page", "page_size", "page[number]", "page[size]", "org", "ID", "force", "prefix", "unit", "user",
         "action", "since", "until", "q", "search[name]", "search[tags]", "filter[project][id]", "include",
         "filter[organization][name]", "filter[workspace][name]", "if_locked_by", "filter[names]"]
    )  # fmt: skip
    query = draw(st.dictionaries(query_keys, st.one_of(HUGE, TEXT, st.sampled_from(target.known)), max_size=4))
    headers = draw(credentials(target))
    if draw(st.integers(0, 9)) == 0:
        headers["Content-Length"] = draw(st.sampled_from(["0", "5", "99999999", "-1", "x"]))
    headers["Content-Type"] = draw(
        st.sampled_from(["application/json", "application/vnd.api+json", "text/plain", "", "multipart/form-data"])
    )
    return {"method": method, "path": path, "query_string": query, "data": draw(body()), "headers": headers}


@st.composite
def credentials(draw: st.DrawFn, target: Target) -> dict[str, str]:
    kind = draw(st.sampled_from(["bearer", "basic", "webhook", "webhook", "garbage", "none"]))
    if kind == "bearer":
        return bearer(target.token)
    if kind == "basic":
        return basic(target.token)
    if kind == "garbage":
        return {
            "Authorization": draw(st.sampled_from(["Bearer", "Basic !!", "Basic " + base64.b64encode(b"x").decode()]))
        }
    if kind == "none":
        return {}
    identity = st.one_of(st.sampled_from(["alice", "bob", "", "a" * 256]), TEXT.map(_as_header))
    headers = {
        "Authorization": f"Bearer {SECRET}",
        "X-User-ID": draw(identity),
        "X-Org-ID": draw(st.sampled_from(["org_acme", "acme", "", "nope", "a" * 300, "x\x00"])),
    }
    if draw(st.booleans()):
        headers["X-Email"] = draw(st.sampled_from(["alice@example.com", "e" * 300, "", "\x00"]))
    return headers


def _as_header(text: str) -> str:
    # What a WSGI server hands over: the UTF-8 bytes read as latin-1; HTTP itself cannot carry line breaks.
    return re.sub(r"[\r\n]", "", text.encode().decode("latin-1"))


# --- the property ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_request_gets_a_5xx(target: Target) -> None:
    deadline = time.monotonic() + WALL_CLOCK_SECONDS
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=bool(os.environ.get("CI")),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(st.data())
    def no_5xx(data: st.DataObject) -> None:
        request = data.draw(requests(target))  # drawn even past the deadline: hypothesis replays draws exactly
        if time.monotonic() > deadline:
            return  # the wall-clock bound: the remaining examples pass without a request
        response = target.client.open(**request)
        statuses.append(response.status_code)
        assert response.status_code < 500, (
            request["method"],
            request["path"],
            response.status_code,
            response.data[:300],
        )

    no_5xx()
    assert len(statuses) >= 20, "the fuzzer sent too few requests within its time budget"
    # The credentials open the doors: a good share of the requests got past authentication into the views.
    past_authentication = [s for s in statuses if s not in (401, 403)]
    assert len(past_authentication) > len(statuses) / 2, sorted(statuses)
    assert any(200 <= s < 300 for s in statuses)
