"""Unmatched URLs and wrong methods under each of the API's prefixes answer the JSON:API errors its views answer."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import bearer
from tests.tfc_api.conftest import MEDIA_TYPE


def error_of(response: TestResponse, status: int) -> dict[str, str]:
    """The one JSON:API error object of ``response``, checked to be the API's error shape."""
    assert response.status_code == status, response.data
    assert response.mimetype == MEDIA_TYPE
    assert list(response.json) == ["errors"]
    (error,) = response.json["errors"]
    assert set(error) == {"status", "title", "detail"}
    assert (error["status"], error["title"]) == (str(status), HTTPStatus(status).phrase.lower())
    assert isinstance(error["detail"], str) and error["detail"]
    return dict(error)


@pytest.mark.parametrize("prefix", ["/api/v2", "/tfe/api/v2", "/internal/tfe/api/v2"])
def test_unmatched_urls_and_wrong_methods_have_the_views_error_shape(
    client: FlaskClient, token: str, prefix: str
) -> None:
    # A view's own 404 (an unknown organization; on the internal door: internal endpoints not enabled).
    error_of(client.get(f"{prefix}/organizations/nope/workspaces/prod", headers=bearer(token)), 404)
    error_of(client.get(f"{prefix}/no-such-resource", headers=bearer(token)), 404)
    wrong_method = client.delete(f"{prefix}/ping", headers=bearer(token))
    assert "DELETE" in error_of(wrong_method, 405)["detail"]
    assert "GET" in wrong_method.headers["Allow"]
    # The TFE version headers are on every answer under the prefix, errors included.
    assert wrong_method.headers["TFP-API-Version"]
