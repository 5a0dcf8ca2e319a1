"""The relying party refuses id tokens it must not trust: wrong signature, ``iss``, ``aud``, ``nonce``, expired.

A certified provider never issues such tokens, so these tests use an issuer that signs whatever claims a test asks
for (discovery, JWKS and a token endpoint on loopback). The first test is the control: the same issuer's honest
token is accepted, so each refusal below is the check under test and not a broken setup.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from jwt.algorithms import RSAAlgorithm

from app.extensions import db
from app.models import AuthorizationCode
from app.repositories import orgs

TERRAFORM_REDIRECT = "http://localhost:10001/login"
CLIENT_ID = "statesman-rp"


class SigningIssuer:
    """Discovery, JWKS and a token endpoint answering with ``self.claims(nonce)`` signed by ``self.key``."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.published = self.key
        self.claims: Callable[[str], dict[str, Any]] = self.honest
        self.token_requests: list[dict[str, list[str]]] = []
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    self._json(
                        {
                            "issuer": issuer.url,
                            "authorization_endpoint": f"{issuer.url}/authorize",
                            "token_endpoint": f"{issuer.url}/token",
                            "jwks_uri": f"{issuer.url}/jwks",
                            "id_token_signing_alg_values_supported": ["RS256"],
                        }
                    )
                elif self.path == "/jwks":
                    jwk = json.loads(RSAAlgorithm.to_jwk(issuer.published.public_key()))
                    self._json({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                issuer.token_requests.append({**form, "path": [self.path]})
                nonce = issuer.nonces.get(form.get("code", [""])[0], "")
                id_token = jwt.encode(issuer.claims(nonce), issuer.key, algorithm="RS256", headers={"kid": "k1"})
                self._json({"access_token": "provider-access", "token_type": "Bearer", "id_token": id_token})

            def _json(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.nonces: dict[str, str] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def honest(self, nonce: str) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.url,
            "sub": "dana",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "email": "dana@example.test",
            "groups": ["platform"],
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def issuer() -> Iterator[SigningIssuer]:
    signing = SigningIssuer()
    yield signing
    signing.close()


@pytest.fixture
def rp_app(make_app: Callable[..., Flask], issuer: SigningIssuer) -> Iterator[Flask]:
    issuer.claims, issuer.published = issuer.honest, issuer.key
    application = make_app(
        public_base_url="http://localhost",
        auth_issuer=issuer.url,
        auth_client_id=CLIENT_ID,
        auth_client_secret="rp-secret",
        auth_group_orgs=(("platform", "acme", None),),
    )
    with application.app_context():
        orgs.create_org("acme")
    yield application


def round_trip(app: Flask, issuer: SigningIssuer) -> tuple[int, str, str]:
    """Terraform's request, the provider's redirect back (code + state); returns the callback's answer."""
    client = app.test_client()
    query = urlencode(
        {
            "client_id": "terraform-cli",
            "redirect_uri": TERRAFORM_REDIRECT,
            "response_type": "code",
            "state": "tf-state",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )
    start = client.get(f"/oauth/authorization?{query}")
    assert start.status_code == 302, start.get_data(as_text=True)
    sent = parse_qs(urlsplit(start.headers["Location"]).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["code_challenge"]  # PKCE towards the provider too
    assert sent["redirect_uri"] == ["http://localhost/oauth/callback"]
    code = f"provider-code-{time.monotonic_ns()}"
    issuer.nonces[code] = sent["nonce"][0]
    answer = client.get(f"/oauth/callback?{urlencode({'code': code, 'state': sent['state'][0]})}")
    return answer.status_code, answer.headers.get("Location", ""), answer.get_data(as_text=True)


def codes(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(db.select(db.func.count()).select_from(AuthorizationCode)) or 0)


def test_control_an_honest_id_token_signs_the_user_in(rp_app: Flask, issuer: SigningIssuer) -> None:
    status, location, _body = round_trip(rp_app, issuer)
    assert status == 302 and location.startswith(TERRAFORM_REDIRECT + "?code=")
    assert codes(rp_app) == 1
    exchange = issuer.token_requests[-1]
    assert exchange["code_verifier"] and exchange["grant_type"] == ["authorization_code"]


def _changed(**changes: Any) -> Callable[[SigningIssuer], Callable[[str], dict[str, Any]]]:
    return lambda issuer: lambda nonce: {**issuer.honest(nonce), **changes}


def _expired(issuer: SigningIssuer) -> Callable[[str], dict[str, Any]]:
    now = int(time.time())
    return lambda nonce: {**issuer.honest(nonce), "iat": now - 7200, "exp": now - 3600}


def _no_nonce(issuer: SigningIssuer) -> Callable[[str], dict[str, Any]]:
    return lambda nonce: {k: v for k, v in issuer.honest(nonce).items() if k != "nonce"}


@pytest.mark.parametrize(
    "tamper, why",
    [
        (_changed(aud="someone-else"), "aud"),
        (_changed(aud=["someone-else", "another"]), "aud"),
        # azp naming us does not make a token for another audience ours.
        (_changed(aud="someone-else", azp=CLIENT_ID), "aud"),
        (_changed(iss="http://127.0.0.1:1"), "iss"),
        (_changed(nonce="replayed-nonce"), "nonce"),
        (_no_nonce, "nonce"),
        (_expired, "expired"),
        (_changed(sub=""), "sub"),
    ],
    ids=[
        "wrong-aud",
        "wrong-aud-list",
        "wrong-aud-our-azp",
        "wrong-iss",
        "wrong-nonce",
        "no-nonce",
        "expired",
        "empty-sub",
    ],
)
def test_an_untrustworthy_id_token_is_refused(
    rp_app: Flask,
    issuer: SigningIssuer,
    tamper: Callable[[SigningIssuer], Callable[[str], dict[str, Any]]],
    why: str,
) -> None:
    issuer.claims = tamper(issuer)
    status, location, body = round_trip(rp_app, issuer)
    assert status == 400 and not location, (status, location)
    assert "access_denied" in body and why in body, body
    assert codes(rp_app) == 0


def test_an_id_token_signed_with_an_unpublished_key_is_refused(rp_app: Flask, issuer: SigningIssuer) -> None:
    issuer.published = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        status, location, body = round_trip(rp_app, issuer)
    finally:
        issuer.published = issuer.key
    assert status == 400 and not location and "access_denied" in body and "bad_signature" in body, body
    assert codes(rp_app) == 0


@pytest.mark.slow
def test_an_unresponsive_provider_is_temporarily_unavailable_not_a_hung_worker(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.auth import oidc

    monkeypatch.setattr(oidc, "HTTP_TIMEOUT_SECONDS", 1.0)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        app = make_app(
            public_base_url="http://localhost",
            auth_issuer=f"http://127.0.0.1:{silent.getsockname()[1]}",
            auth_client_id=CLIENT_ID,
        )
        query = urlencode(
            {
                "client_id": "terraform-cli",
                "redirect_uri": TERRAFORM_REDIRECT,
                "response_type": "code",
                "state": "s",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
            }
        )
        started = time.monotonic()
        response = app.test_client().get(f"/oauth/authorization?{query}")
        assert time.monotonic() - started < 8
    query_back = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query_back["error"] == ["temporarily_unavailable"] and query_back["state"] == ["s"]


def test_authorization_and_token_urls_can_be_set_by_hand(make_app: Callable[..., Flask], issuer: SigningIssuer) -> None:
    """``OPENTACO_AUTH_AUTH_URL`` and ``OPENTACO_AUTH_TOKEN_URL`` win over the discovery document."""
    issuer.claims, issuer.published = issuer.honest, issuer.key
    app = make_app(
        public_base_url="http://localhost",
        auth_issuer=issuer.url,
        auth_client_id=CLIENT_ID,
        auth_client_secret="rp-secret",
        auth_authorize_url=f"{issuer.url}/by-hand/authorize",
        auth_token_url=f"{issuer.url}/by-hand/token",
        auth_group_orgs=(("platform", "acme", None),),
    )
    with app.app_context():
        orgs.create_org("acme")
    client = app.test_client()
    query = urlencode(
        {
            "client_id": "terraform-cli",
            "redirect_uri": TERRAFORM_REDIRECT,
            "response_type": "code",
            "state": "s",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )
    start = client.get(f"/oauth/authorization?{query}")
    assert start.headers["Location"].startswith(f"{issuer.url}/by-hand/authorize?")
    sent = parse_qs(urlsplit(start.headers["Location"]).query)
    issuer.nonces["hand-code"] = sent["nonce"][0]
    answer = client.get(f"/oauth/callback?{urlencode({'code': 'hand-code', 'state': sent['state'][0]})}")
    assert answer.status_code == 302 and answer.headers["Location"].startswith(TERRAFORM_REDIRECT + "?code=")
    assert issuer.token_requests[-1]["path"] == ["/by-hand/token"]
