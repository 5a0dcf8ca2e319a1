"""Unmatched URLs and wrong methods behind both doors answer ``{"error","message"}`` as the views do."""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import bearer
from tests.internal.conftest import Ui, token_for


def message_of(response: TestResponse, status: int) -> str:
    """The message of ``response``, checked to be the management API's error shape."""
    assert response.status_code == status, response.data
    assert response.is_json
    assert set(response.json) == {"error", "message"}
    assert response.json["error"] == response.json["message"]
    assert isinstance(response.json["message"], str) and response.json["message"]
    return str(response.json["message"])


def test_unmatched_urls_and_wrong_methods_have_the_views_error_shape(client: FlaskClient, acme: Ui) -> None:
    webhook = acme.headers()
    token = bearer(token_for(client.application, "acme", "alice"))
    for prefix, headers in (("/internal/api", webhook), ("/v1", token)):
        # A view's own 404 (an unknown unit).
        assert "nope" in message_of(client.get(f"{prefix}/units/nope", headers=headers), 404)
        message_of(client.get(f"{prefix}/no-such-resource", headers=headers), 404)
        wrong_method = client.put(f"{prefix}/units", headers=headers)
        assert "PUT" in message_of(wrong_method, 405)
        assert {"GET", "POST"} <= set(wrong_method.headers["Allow"].split(", "))
    # A 401 carries the same challenge from a view and from the app-level handler.
    assert client.get("/v1/units").headers["WWW-Authenticate"].startswith("Bearer")
