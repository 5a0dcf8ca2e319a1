"""JWT authentication against a locally served OIDC issuer."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from flask import Flask

from app import create_app
from app.auth.oidc_jwt import JwtVerifier
from app.core.errors import Unauthenticated
from tests.factories import basic, bearer, make_org
from tests.fake_oidc import FakeIssuer

STATE = json.dumps({"version": 4, "serial": 1, "lineage": "jwt-lineage", "outputs": {}, "resources": []}).encode()


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    fake = FakeIssuer()
    yield fake
    fake.close()


@pytest.fixture
def jwt_app(config, issuer: FakeIssuer) -> Iterator[Flask]:
    application = create_app(dataclasses.replace(config, jwt_issuer_url=issuer.url, jwt_audience="statesman"))
    make_org(application, "acme")
    make_org(application, "other")
    yield application
    from app.extensions import db, drivers

    with application.app_context():
        db.session.remove()
        db.engine.dispose()
        drivers().close()


def test_valid_token_as_basic_password_writes_and_reads(jwt_app: Flask, issuer: FakeIssuer) -> None:
    client = jwt_app.test_client()
    token = issuer.mint()
    assert client.post("/state/acme/prod", data=STATE, headers=basic(token, user="jwt")).status_code == 200
    response = client.get("/state/acme/prod", headers=basic(token, user="jwt"))
    assert response.status_code == 200
    assert response.data == STATE


def test_valid_token_as_bearer(jwt_app: Flask, issuer: FakeIssuer) -> None:
    client = jwt_app.test_client()
    assert client.post("/state/acme/prod", data=STATE, headers=bearer(issuer.mint())).status_code == 200


def test_an_identity_providers_rfc_9068_access_token_still_reaches_the_verifier(
    jwt_app: Flask, issuer: FakeIssuer
) -> None:
    """Its header says ``typ: at+jwt`` like Statesman's own access tokens; not being one of ours, it is verified."""
    client = jwt_app.test_client()
    token = issuer.mint(typ="at+jwt")
    assert client.post("/state/acme/prod", data=STATE, headers=bearer(token)).status_code == 200
    assert (
        client.get("/state/acme/prod", headers=bearer(issuer.mint(typ="at+jwt", audience="other"))).status_code == 401
    )


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"audience": "someone-else"}, "audience"),
        ({"ttl": -120}, "expired"),
        ({"issuer": "https://evil.example.com"}, "issuer"),
    ],
)
def test_invalid_tokens_are_401(jwt_app: Flask, issuer: FakeIssuer, claims: dict, reason: str) -> None:
    response = jwt_app.test_client().get("/state/acme/prod", headers=basic(issuer.mint(**claims), user="jwt"))
    assert response.status_code == 401, reason
    assert "invalid JWT" in response.json["error"]


def test_token_signed_by_an_unknown_key_is_401(jwt_app: Flask, issuer: FakeIssuer) -> None:
    other = FakeIssuer()
    try:
        forged = other.mint(issuer=issuer.url)
    finally:
        other.close()
    assert jwt_app.test_client().get("/state/acme/prod", headers=bearer(forged)).status_code == 401


def test_other_workspace_is_forbidden(jwt_app: Flask, issuer: FakeIssuer) -> None:
    client = jwt_app.test_client()
    response = client.post("/state/acme/staging", data=STATE, headers=basic(issuer.mint(state="prod"), user="jwt"))
    assert response.status_code == 403


def test_other_org_is_not_found(jwt_app: Flask, issuer: FakeIssuer) -> None:
    client = jwt_app.test_client()
    response = client.post("/state/other/prod", data=STATE, headers=basic(issuer.mint(project="acme"), user="jwt"))
    assert response.status_code == 404


def test_star_grants_every_workspace_of_the_org(jwt_app: Flask, issuer: FakeIssuer) -> None:
    client = jwt_app.test_client()
    token = issuer.mint(state="*")
    for workspace in ("prod", "staging", "app.dev"):
        assert client.post(f"/state/acme/{workspace}", data=STATE, headers=basic(token, user="jwt")).status_code == 200
    assert client.get("/state/other/prod", headers=basic(token, user="jwt")).status_code == 404


def test_missing_claim_is_401(jwt_app: Flask, issuer: FakeIssuer) -> None:
    token = issuer.mint(**{"terraform-backend": None})
    assert jwt_app.test_client().get("/state/acme/prod", headers=bearer(token)).status_code == 401


def test_key_rotation_at_the_issuer(issuer: FakeIssuer) -> None:
    verifier = JwtVerifier(issuer.url, "statesman", jwks_cooldown_seconds=0)
    assert verifier.verify(issuer.mint()).workspace_name == "prod"
    issuer.rotate()
    issuer.retire_old_keys()
    assert verifier.verify(issuer.mint(state="*")).workspace_name is None


def test_unreachable_issuer_is_503(jwt_app: Flask, issuer: FakeIssuer) -> None:
    token = issuer.mint()
    issuer.close()
    response = jwt_app.test_client().get("/state/acme/prod", headers=basic(token, user="jwt"))
    assert response.status_code == 503
    assert "OIDC issuer" in response.json["error"]


def test_jwt_username_without_configuration_is_401(app: Flask) -> None:
    make_org(app, "acme")
    response = app.test_client().get("/state/acme/prod", headers=basic("eyJ.a.b", user="jwt"))
    assert response.status_code == 401
    assert "not configured" in response.json["error"]


def test_verifier_rejects_garbage(issuer: FakeIssuer) -> None:
    with pytest.raises(Unauthenticated):
        JwtVerifier(issuer.url, "statesman").verify("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
