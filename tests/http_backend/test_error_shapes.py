"""Unmatched URLs and wrong methods under both URL shapes answer ``{"error": message}`` as the views do."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import basic, make_token


def message_of(response: TestResponse, status: int) -> str:
    """The message of ``response``, checked to be the http backend's error shape."""
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    assert list(response.json) == ["error"]
    assert isinstance(response.json["error"], str) and response.json["error"]
    return str(response.json["error"])


def test_unmatched_urls_and_wrong_methods_have_the_views_error_shape(app: Flask, client: FlaskClient) -> None:
    auth = basic(make_token(app))
    # A view's own 404 (no state yet), through both URL shapes.
    message_of(client.get("/state/acme/prod", headers=auth), 404)
    message_of(client.get("/v1/backend/prod?org=acme", headers=auth), 404)
    for path in ("/state/acme", "/state/acme/prod/extra", "/v1/backend/prod/extra"):
        message_of(client.get(path, headers=auth), 404)
    for path in ("/state/acme/prod", "/v1/backend/prod?org=acme"):
        wrong_method = client.patch(path, headers=auth)
        assert "PATCH" in message_of(wrong_method, 405)
        assert {"GET", "POST", "LOCK", "UNLOCK"} <= set(wrong_method.headers["Allow"].split(", "))
