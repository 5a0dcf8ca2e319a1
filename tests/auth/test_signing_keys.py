"""The keys that sign ``/v1/auth`` access tokens: persisted, shared by every process, rotatable, published by kid.

A service other than Statesman verifies an access token the way any JWT consumer does: it fetches
``/oidc/jwks.json``, picks the key by the token's ``kid`` and checks signature, issuer, audience and expiry.
"""

# The exchange tests' fixtures (a loopback identity provider, an app configured for it) are imported to be used here.
# ruff: noqa: F401, F811

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.core.clock import utcnow
from app.extensions import db
from app.models import AuditEvent, SigningKey
from app.repositories import signing_keys
from app.repositories.tokens import verified_tokens
from tests.auth.test_oidc_id_token import SigningIssuer
from tests.auth.test_token_exchange import ACCOUNT, exchange, id_token, idp_config, issuer, refresh, xapp
from tests.factories import basic, bearer


def verify_as_a_third_party(client: FlaskClient, token: str) -> dict[str, Any]:
    """What a service holding only the JWK set concludes about ``token`` (raises when it does not verify)."""
    keys = client.get("/oidc/jwks.json")
    assert keys.status_code == 200 and "max-age" in keys.headers["Cache-Control"]
    kid = jwt.get_unverified_header(token)["kid"]
    (jwk,) = [key for key in keys.get_json()["keys"] if key["kid"] == kid]
    public = jwt.PyJWK(jwk).key
    return jwt.decode(token, public, algorithms=["ES256"], audience="statesman", issuer="http://localhost")


def sign_in(client: FlaskClient, issuer: SigningIssuer) -> dict[str, Any]:
    status, body = exchange(client, id_token(issuer))
    assert status == 200, body
    return body


def test_an_access_token_verifies_with_the_published_keys(
    xapp: Flask,
    issuer: SigningIssuer,
) -> None:
    client = xapp.test_client()
    body = sign_in(client, issuer)
    claims = verify_as_a_third_party(client, body["access_token"])
    assert claims["sub"] == "dana" and claims["org"] == "acme" and claims["jti"].startswith("at-")
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"
    assert claims["exp"] - claims["iat"] <= 3600
    # Statesman accepts it through every API: a bearer token, and the http backend's Basic password.
    assert client.get(ACCOUNT, headers=bearer(body["access_token"])).status_code == 200
    assert client.get("/state/acme/none", headers=basic(body["access_token"])).status_code == 404


def test_a_tampered_access_token_is_refused(xapp: Flask, issuer: SigningIssuer) -> None:
    client = xapp.test_client()
    header, payload, signature = sign_in(client, issuer)["access_token"].split(".")
    forged = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    assert client.get(ACCOUNT, headers=bearer(forged)).status_code == 401
    with pytest.raises(jwt.InvalidSignatureError):
        verify_as_a_third_party(client, forged)


def test_every_process_signs_with_the_same_persisted_key(
    make_app: Callable[..., Flask],
    xapp: Flask,
    idp_config: dict[str, Any],
    issuer: SigningIssuer,
) -> None:
    first = sign_in(xapp.test_client(), issuer)
    other = make_app(**idp_config).test_client()  # another worker or host on the same database
    second = sign_in(other, issuer)
    kid = jwt.get_unverified_header(first["access_token"])["kid"]
    assert jwt.get_unverified_header(second["access_token"])["kid"] == kid
    verify_as_a_third_party(other, first["access_token"])
    with xapp.app_context():
        (stored,) = db.session.scalars(db.select(SigningKey))
        assert b"PRIVATE KEY" not in stored.private_key  # sealed by the KMS driver
        assert stored.kid == kid and set(stored.public_jwk) >= {"kty", "crv", "x", "y", "kid"}
        assert "d" not in stored.public_jwk and "d" not in other.get("/oidc/jwks.json").get_json()["keys"][0]


def test_racing_first_use_creates_one_key(xapp: Flask) -> None:
    kids: list[str] = []
    start = threading.Barrier(4)

    def first_use() -> None:
        with xapp.app_context():
            start.wait()
            kids.append(signing_keys.current_signing_key().kid)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 4 and len(set(kids)) == 1
    with xapp.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(SigningKey)) == 1


def test_rotation_keeps_old_tokens_valid_until_the_key_is_pruned(
    xapp: Flask,
    issuer: SigningIssuer,
) -> None:
    client = xapp.test_client()
    before = sign_in(client, issuer)
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    runner = xapp.test_cli_runner()
    rotated = runner.invoke(args=["signing-keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    status, after = refresh(client, before["refresh_token"])
    assert status == 200
    new_kid = jwt.get_unverified_header(after["access_token"])["kid"]
    assert new_kid != old_kid and new_kid in rotated.output
    published = [key["kid"] for key in client.get("/oidc/jwks.json").get_json()["keys"]]
    assert published == [new_kid, old_kid]  # the signing key first
    verify_as_a_third_party(client, before["access_token"])  # old tokens still verify after the rotation
    listing = runner.invoke(args=["signing-keys", "list"]).output
    assert f"{new_kid}\tES256\tsigning" in listing and f"{old_kid}\tES256\tretired" in listing
    kept = runner.invoke(args=["signing-keys", "prune"])  # retired moments ago: kept for its live tokens
    assert kept.exit_code == 0 and "removed 0" in kept.output
    with xapp.app_context():
        key = db.session.get(SigningKey, old_kid)
        key.retired_at = utcnow() - timedelta(days=2)
        db.session.commit()
    pruned = runner.invoke(args=["signing-keys", "prune"])
    assert pruned.exit_code == 0 and old_kid in pruned.output
    assert [key["kid"] for key in client.get("/oidc/jwks.json").get_json()["keys"]] == [new_kid]
    with xapp.app_context():
        actions = {e.action for e in db.session.scalars(db.select(AuditEvent))}
        assert {"signing_key.create", "signing_key.rotate", "signing_key.prune"} <= actions


def test_a_revoked_access_token_is_refused_although_its_signature_is_good(
    xapp: Flask,
    issuer: SigningIssuer,
) -> None:
    client = xapp.test_client()
    body = sign_in(client, issuer)
    refresh(client, body["refresh_token"])
    refresh(client, body["refresh_token"])  # a replay revokes the family, the first access token with it
    verified_tokens.clear()
    verify_as_a_third_party(client, body["access_token"])  # still well signed: only Statesman knows it is revoked
    assert client.get(ACCOUNT, headers=bearer(body["access_token"])).status_code == 401
