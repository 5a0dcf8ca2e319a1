"""``/metrics`` in one process: what each metric counts, bounded labels, the optional bearer token."""

from __future__ import annotations

import json
import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.errors import BackendUnavailable
from app.drivers.instrumented import instrument
from tests.conftest import drivers_of
from tests.factories import basic, bearer, lock_info, make_token

STATE = json.dumps({"version": 4, "serial": 1, "lineage": "l1", "outputs": {}, "resources": []}).encode()


def samples(client, headers: dict[str, str] | None = None) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by name and labels."""
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def call(client, method: str, path: str, **kwargs):
    """A request whose response is closed, as a WSGI server closes every response (that records it)."""
    response = client.open(path, method=method, **kwargs)
    response.close()
    return response


@pytest.fixture(autouse=True)
def _single_process() -> None:
    assert not os.environ.get("PROMETHEUS_MULTIPROC_DIR"), "these tests read this process's registry"


def test_requests_are_counted_by_route_template_method_and_status(app, client):
    token = make_token(app)
    before = samples(client)
    route = "/state/<org>/<workspace>"
    assert call(client, "POST", "/state/acme/metrics-ws", data=STATE, headers=basic(token)).status_code == 200
    for _ in range(3):
        assert call(client, "GET", "/state/acme/metrics-ws", headers=basic(token)).status_code == 200
    assert call(client, "GET", "/state/acme/metrics-missing", headers=basic(token)).status_code == 404
    assert call(client, "GET", "/no/such/path-secret-name").status_code == 404
    after = samples(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("statesman_http_requests_total", route=route, method="GET", status="200") == 3
    assert delta("statesman_http_requests_total", route=route, method="GET", status="404") == 1
    assert delta("statesman_http_requests_total", route=route, method="POST", status="200") == 1
    assert delta("statesman_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert delta("statesman_http_request_duration_seconds_count", route=route, method="GET") == 4
    assert delta("statesman_state_write_size_bytes_count") == 1
    assert delta("statesman_state_write_size_bytes_sum") == len(STATE)
    labels = {v for (_name, pairs) in after for (_k, v) in pairs}
    assert not any("metrics-ws" in v or "metrics-missing" in v or "secret-name" in v or "acme" in v for v in labels)


def test_unknown_methods_share_one_label(client):
    call(client, "BREW", "/state/acme/prod")
    methods = {dict(pairs).get("method") for (_name, pairs) in samples(client)}
    assert "BREW" not in methods
    assert "other" in methods


def test_lock_conflicts_are_counted_by_api(app, client):
    token = make_token(app)
    before = samples(client)
    path = "/state/acme/conflicted"
    assert call(client, "LOCK", path, data=lock_info("first"), headers=basic(token)).status_code == 200
    assert call(client, "LOCK", path, data=lock_info("second"), headers=basic(token)).status_code == 423
    after = samples(client)
    api = {"api": "http_backend"}
    assert (
        value(after, "statesman_lock_conflicts_total", **api) - value(before, "statesman_lock_conflicts_total", **api)
        == 1
    )
    backend = {"backend": "local"}
    acquired = value(after, "statesman_lock_acquire_duration_seconds_count", **backend)
    assert acquired - value(before, "statesman_lock_acquire_duration_seconds_count", **backend) == 2


def test_driver_errors_are_counted_by_kind_and_backend(app, client):
    token = make_token(app)
    storage = drivers_of(app).storage
    labels = {"kind": "storage", "backend": "fs"}
    before = value(samples(client), "statesman_driver_errors_total", **labels)
    # A regular file where the storage directory should be: every write fails, even for root.
    storage.root.mkdir(parents=True, exist_ok=True)
    blocked = storage.root / "blocked"
    blocked.write_text("not a directory")
    original, storage.root = storage.root, blocked
    try:
        response = call(client, "POST", "/state/acme/unwritable", data=STATE, headers=basic(token))
    finally:
        storage.root = original
    assert response.status_code == 503
    assert value(samples(client), "statesman_driver_errors_total", **labels) - before == 1


class _FailingKms:
    name = "test-kms"

    def encrypt(self, chunks, context):
        yield b"header"
        raise BackendUnavailable("test kms", "went away mid-stream")


class _Storage:
    name = "test-storage"

    def put(self, key, chunks):
        return sum(len(chunk) for chunk in chunks)


def test_an_error_crossing_two_drivers_counts_once_for_the_driver_that_raised_it(client):
    kms, storage = instrument("kms", _FailingKms()), instrument("storage", _Storage())
    before = samples(client)
    with pytest.raises(BackendUnavailable):
        storage.put("ws/v", kms.encrypt([b"x"], b"ctx"))
    after = samples(client)
    for kind, backend, expected in (("kms", "test-kms", 1), ("storage", "test-storage", 0)):
        labels = {"kind": kind, "backend": backend}
        counted = value(after, "statesman_driver_errors_total", **labels)
        assert counted - value(before, "statesman_driver_errors_total", **labels) == expected


def test_metrics_token_guards_the_endpoint(make_app):
    app = make_app(metrics_token="scrape-secret")
    client = app.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers=bearer("wrong")).status_code == 401
    assert client.get("/metrics", headers=basic("scrape-secret")).status_code == 401
    samples(client, bearer("scrape-secret"))
