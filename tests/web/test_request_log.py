"""The request log: one line per request with the route template, the resolved names and the request id, and
nothing secret (credentials, query strings, bodies)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.core.request_context import RequestIdFilter
from config.log_format import JsonFormatter
from tests.factories import basic, make_token

MARKER = "planted-marker-5f1c"
STATE = json.dumps(
    {"version": 4, "serial": 1, "lineage": "l1", "outputs": {"o": {"value": MARKER, "type": "string"}}, "resources": []}
).encode()


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every ``statesman`` record of the test, formatted as ``LOG_FORMAT=json`` formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("statesman")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


def entries(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def call(client, method: str, path: str, **kwargs):
    response = client.open(path, method=method, **kwargs)
    response.close()  # the WSGI server's close() is when the request is recorded
    return response


def test_one_json_line_per_request_with_route_names_user_and_request_id(app, client, json_lines):
    token = make_token(app)
    call(
        client, "POST", "/state/acme/logged?ID=lock-123", data=STATE, headers={**basic(token), "X-Request-ID": "ci-42"}
    )
    call(client, "GET", "/state/acme/logged", headers=basic(token))
    requests_logged = [e for e in entries(json_lines) if e["logger"] == "statesman.request"]
    assert len(requests_logged) == 2
    write, read = requests_logged
    assert write["request_id"] == "ci-42"
    assert {k: write[k] for k in ("method", "route", "status", "org", "workspace")} == {
        "method": "POST",
        "route": "/state/<org>/<workspace>",
        "status": 200,
        "org": "acme",
        "workspace": "logged",
    }
    assert write["user"] and isinstance(write["duration_ms"], float)
    assert {"time", "level", "message"} <= write.keys()
    assert read["request_id"] != "ci-42" and len(str(read["request_id"])) == 32
    text = json_lines.getvalue()
    for secret in (token, MARKER, "lock-123", "ID="):
        assert secret not in text


def test_unsafe_request_ids_are_stripped_and_bounded(client, json_lines):
    response = call(client, "GET", "/healthz", headers={"X-Request-ID": 'a"b c{}\\d' + "x" * 100})
    assert response.headers["X-Request-ID"] == "abcd" + "x" * 60
    assert call(client, "GET", "/healthz", headers={"X-Request-ID": '"{} '}).headers["X-Request-ID"] != ""


def test_a_missing_route_logs_unmatched_not_the_path(client, json_lines):
    call(client, "GET", "/secret-looking/path?signature=abc")
    (entry,) = [e for e in entries(json_lines) if e["logger"] == "statesman.request"]
    assert entry["route"] == "unmatched" and entry["status"] == 404
    assert "secret-looking" not in json_lines.getvalue() and "signature" not in json_lines.getvalue()


def test_an_agent_finding_no_work_is_logged_at_debug_only(app, client, json_lines):
    from app.repositories import orgs, tokens

    with app.app_context():
        _, secret = tokens.create_token(orgs.create_org("acme"), None, "test", kind="agent")
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    assert call(client, "POST", "/api/agent/v1/jobs/claim", data=b'{"agent":"a1"}', headers=headers).status_code == 204
    assert call(client, "GET", "/healthz").status_code == 200
    routes = [e["route"] for e in entries(json_lines) if e["logger"] == "statesman.request"]
    assert routes == ["/healthz"]  # the idle poll is below INFO
    logging.getLogger("statesman").setLevel(logging.DEBUG)
    call(client, "POST", "/api/agent/v1/jobs/claim", data=b'{"agent":"a1"}', headers=headers)
    idle = [e for e in entries(json_lines) if e["route"] == "/api/agent/v1/jobs/claim"]
    assert len(idle) == 1 and idle[0]["level"] == "debug" and idle[0]["status"] == 204
