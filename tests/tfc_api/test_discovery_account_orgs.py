"""Discovery, ping, headers, account details, organizations and entitlements through the Flask test client."""

from __future__ import annotations

import dataclasses

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from app.extensions import db, drivers
from config import Config
from tests.factories import make_org, make_token
from tests.tfc_api.conftest import MEDIA_TYPE, Api, assert_error

API_HEADERS = {"TFP-API-Version": "2.5", "TFP-AppName": "Terraform Enterprise"}


def assert_api_headers(response: TestResponse) -> None:
    for name, value in API_HEADERS.items():
        assert response.headers[name] == value
    assert response.headers["X-TFE-Version"]
    assert "X-RateLimit-Limit" not in response.headers


def test_discovery_lists_the_api_without_versions_or_login(client: FlaskClient) -> None:
    response = client.get("/.well-known/terraform.json")
    assert response.status_code == 200
    assert response.json["tfe.v2"] == response.json["tfe.v2.1"] == response.json["state.v2"] == "/api/v2/"
    assert response.json["motd.v1"] == "/api/v2/motd"
    assert "versions.v1" not in response.json and "login.v1" not in response.json


def test_ping_motd_and_every_api_response_carry_the_tfe_headers(client: FlaskClient) -> None:
    ping = client.get("/api/v2/ping")
    assert ping.status_code == 204
    assert_api_headers(ping)
    assert_api_headers(client.get("/tfe/api/v2/ping"))
    assert client.get("/api/v2/motd").json["msg"]
    missing = client.get("/api/v2/no/such/thing")
    assert_error(missing, 404)
    assert_api_headers(missing)


def test_account_details_and_bad_tokens(api: Api, client: FlaskClient) -> None:
    response = api.get("account/details")
    assert response.status_code == 200 and response.mimetype == MEDIA_TYPE
    data = response.json["data"]
    assert data["type"] == "users" and data["id"].startswith("user-")
    assert data["attributes"]["username"] == "alice" and data["attributes"]["email"] == "alice@example.com"
    assert_api_headers(response)
    assert_error(Api(client, "stm_not-a-token").get("account/details"), 401)
    assert_error(Api(client, None).get("organizations/acme/workspaces"), 401)


def test_organization_by_name_id_and_external_id(api: Api, app: Flask) -> None:
    with app.app_context():
        from app.repositories.orgs import get_org

        org = get_org("acme")
        org.external_org_id = "workos_123"
        db.session.commit()
        org_id = org.id
    for ref in ("acme", org_id, "workos_123"):
        response = api.get(f"organizations/{ref}")
        assert response.status_code == 200, response.json
        data = response.json["data"]
        assert data["type"] == "organizations" and data["id"] == "acme"
        assert data["attributes"]["name"] == "acme" and data["attributes"]["external-id"] == org_id
        assert data["attributes"]["permissions"]["can-update"] is True


def test_organization_list_is_the_tokens_organization(api: Api, app: Flask) -> None:
    make_org(app, "other")
    response = api.get("organizations")
    assert [o["id"] for o in response.json["data"]] == ["acme"]
    assert response.json["meta"]["pagination"] == {
        "current-page": 1,
        "page-size": 20,
        "prev-page": None,
        "next-page": None,
        "total-pages": 1,
        "total-count": 1,
    }


def test_entitlements_and_other_organizations(api: Api, app: Flask) -> None:
    make_token(app, "other", "mallory")
    response = api.get("organizations/acme/entitlement-set")
    assert response.status_code == 200
    data = response.json["data"]
    assert data["type"] == "entitlement-sets"
    assert data["attributes"]["operations"] is False and data["attributes"]["state-storage"] is True
    assert_error(api.get("organizations/other/entitlement-set"), 404)
    assert_error(api.get("organizations/nope/entitlement-set"), 404)
    assert_error(api.get("organizations/other"), 404)


def test_tokens_cannot_create_organizations(api: Api) -> None:
    response = api.post("organizations", {"data": {"type": "organizations", "attributes": {"name": "new"}}})
    assert_error(response, 403, "site administrator")


def test_site_admin_creates_updates_and_deletes_organizations(config: Config) -> None:
    app = create_app(dataclasses.replace(config, auth_disabled=True))
    api = Api(app.test_client(), None)
    try:
        created = api.post(
            "organizations", {"data": {"type": "organizations", "attributes": {"name": "neworg", "email": "a@b.c"}}}
        )
        assert created.status_code == 201 and created.json["data"]["id"] == "neworg"
        assert_error(api.post("organizations", {"data": {"attributes": {"name": "neworg"}}}), 409)
        assert_error(api.post("organizations", {"data": {"attributes": {"name": "bad name"}}}), 400, "1-90")
        renamed = api.patch("organizations/neworg", {"data": {"attributes": {"name": "renamed"}}})
        assert renamed.json["data"]["attributes"]["name"] == "renamed"
        api.create_workspace("ws1", org="renamed")
        assert_error(api.delete("organizations/renamed"), 409, "workspace")
        assert api.delete("organizations/renamed/workspaces/ws1").status_code == 204
        assert api.delete("organizations/renamed").status_code == 204
        assert_error(api.get("organizations/renamed"), 404)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
            drivers().close()
