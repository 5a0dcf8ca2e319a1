"""The webhook door: secret, X-User-ID, X-Org-ID, and nothing at all when the feature is off."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from flask.testing import FlaskClient

from app import create_app
from tests.conftest import base_config
from tests.internal.conftest import SECRET, Ui


def test_missing_authorization_is_401(client: FlaskClient) -> None:
    response = client.get("/internal/api/health", headers={"X-User-ID": "alice"})
    assert response.status_code == 401
    assert "Bearer" in response.json["error"]


def test_wrong_scheme_is_401(client: FlaskClient) -> None:
    response = client.get("/internal/api/health", headers={"Authorization": f"Basic {SECRET}", "X-User-ID": "a"})
    assert response.status_code == 401


def test_wrong_secret_is_403_with_the_documented_body(client: FlaskClient) -> None:
    response = client.get("/internal/api/health", headers={"Authorization": "Bearer nope", "X-User-ID": "alice"})
    assert response.status_code == 403
    assert response.json["error"] == "invalid webhook secret"


def test_missing_user_header_is_401(client: FlaskClient) -> None:
    response = client.get("/internal/api/health", headers={"Authorization": f"Bearer {SECRET}"})
    assert response.status_code == 401
    assert "X-User-ID" in response.json["error"]


def test_malformed_org_header_is_400(ui: Ui) -> None:
    response = ui.in_org("not a valid/org id").get("/units")
    assert response.status_code == 400
    assert "X-Org-ID" in response.json["error"]


def test_unknown_org_is_404_with_a_sync_hint(ui: Ui) -> None:
    response = ui.in_org("org_unknown").get("/units")
    assert response.status_code == 404
    assert "sync" in response.json["error"]
    assert "/internal/api/orgs/sync" in response.json["message"]


def test_health_answers_json(ui: Ui) -> None:
    response = ui.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "type": "internal", "auth_type": "webhook"}


def test_org_header_is_ignored_when_syncing_a_new_org(ui: Ui) -> None:
    body = {"name": "newco", "display_name": "NewCo", "external_org_id": "org_newco"}
    response = ui.in_org("org_newco").post("/orgs/sync", body)
    assert response.status_code == 201, response.json


def test_internal_endpoints_are_absent_when_not_configured(tmp_path: Path, database_url: str) -> None:
    app = create_app(replace(base_config(tmp_path, database_url), internal_webhook_secret=None))
    try:
        client = app.test_client()
        for path in ("/internal/api/health", "/internal/api/orgs", "/internal/api/units"):
            response = client.get(path, headers={"Authorization": f"Bearer {SECRET}", "X-User-ID": "alice"})
            assert response.status_code == 404, path
            assert response.is_json
        response = client.post(
            "/internal/api/orgs/sync",
            headers={"Authorization": "Bearer x", "X-User-ID": "a"},
            json={"name": "a", "display_name": "a", "external_org_id": "a"},
        )
        assert response.status_code == 404
    finally:
        from app.extensions import db, drivers

        with app.app_context():
            db.engine.dispose()
            drivers().close()
