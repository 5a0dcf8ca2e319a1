"""The /v1 door: the same handlers, authenticated by API token; organization from the token or ?org=."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from flask.testing import FlaskClient

from app import create_app
from tests.conftest import base_config, migrate_database
from tests.factories import bearer
from tests.internal.conftest import Ui, state, token_for


def test_v1_needs_a_token(client: FlaskClient) -> None:
    response = client.get("/v1/units")
    assert response.status_code == 401
    assert response.is_json
    assert client.get("/v1/units", headers=bearer("stm_wrong")).status_code == 401


def test_v1_units_with_the_tokens_org(client: FlaskClient, acme: Ui) -> None:
    token = token_for(client.application, "acme", "alice")
    created = client.post("/v1/units", json={"name": "prod"}, headers=bearer(token))
    assert created.status_code == 201
    assert client.post("/v1/units/prod/upload", data=state(1), headers=bearer(token)).status_code == 200
    assert client.get("/v1/units?org=acme", headers=bearer(token)).json["count"] == 1
    versions = client.get(f"/v1/units/{created.json['id']}/versions", headers=bearer(token)).json
    assert versions["count"] == 1
    me = client.get("/v1/me", headers=bearer(token)).json
    assert (me["subject"], me["organization"]["name"], me["roles"], me["kind"]) == ("alice", "acme", ["admin"], "token")
    assert client.get("/v1/health", headers=bearer(token)).json == {"status": "ok", "type": "v1", "auth_type": "token"}
    # The webhook door sees what the token door did (one data model).
    assert acme.get("/units/prod").json["size"] == len(state(1))


def test_v1_works_without_the_internal_endpoints(tmp_path: Path, database_url: str) -> None:
    app = create_app(replace(base_config(tmp_path, database_url), internal_webhook_secret=None))
    try:
        token = token_for_new_org(app)
        client = app.test_client()
        assert client.post("/v1/units", json={"name": "prod"}, headers=bearer(token)).status_code == 201
        assert client.get("/internal/api/units", headers=bearer(token)).status_code == 404
    finally:
        from app.extensions import db, drivers

        with app.app_context():
            db.engine.dispose()
            drivers().close()


def token_for_new_org(app) -> str:
    from tests.factories import make_token

    return make_token(app, "acme", "alice")


def test_organization_tokens_use_units_but_never_manage_roles(client: FlaskClient, acme: Ui) -> None:
    token = token_for(client.application, "acme", None)
    assert client.post("/v1/units", json={"name": "prod"}, headers=bearer(token)).status_code == 201
    assert client.get("/v1/rbac/roles", headers=bearer(token)).status_code == 403
    assert client.get("/v1/audit", headers=bearer(token)).status_code == 403
    assert client.get("/v1/audit?unit=prod", headers=bearer(token)).status_code == 200


def test_v1_without_any_org_is_400(tmp_path: Path) -> None:
    config = replace(base_config(tmp_path, "sqlite:///" + str(tmp_path / "dev.db")), auth_disabled=True)
    migrate_database(config)
    app = create_app(config)
    try:
        client = app.test_client()
        response = client.get("/v1/units")
        assert response.status_code == 400
        assert "?org=" in response.json["error"]
        created = client.post("/v1/orgs", json={"name": "devorg", "display_name": "Dev"})
        assert created.status_code == 201
        assert client.get("/v1/units?org=devorg").json["units"] == []
    finally:
        from app.extensions import db, drivers

        with app.app_context():
            db.engine.dispose()
            drivers().close()
