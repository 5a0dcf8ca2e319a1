"""``terraform login``'s OAuth endpoints through the Flask test client, signing in at a real OpenID provider.

What Terraform sends is copied from Terraform 1.11's ``internal/command/login.go``: an authorization request with
``client_id=terraform-cli``, ``redirect_uri=http://localhost:<port>/login``, ``state``, ``code_challenge`` and
``code_challenge_method=S256``; then a form POST to the token endpoint with ``grant_type=authorization_code``,
``code``, ``redirect_uri``, ``client_id`` and ``code_verifier`` (golang.org/x/oauth2, client id in the body).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import ApiToken, AuthorizationCode
from app.repositories import oauth_codes, orgs
from tests.oidc_provider import (
    OpenIdProvider,
    browse,
    install_provider,
    on_loopback,
    requests_fetch,
    start_provider,
)

BASE = "http://localhost"
CALLBACK = f"{BASE}/oauth/callback"
TERRAFORM_REDIRECT = "http://localhost:10003/login"


@pytest.fixture(scope="session")
def openid_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    """The real provider, with our client registered for the test client's callback URL."""
    directory = tmp_path_factory.mktemp("oidc-provider")
    provider = start_provider(install_provider(directory / "app"), CALLBACK, directory / "provider.log")
    yield provider
    provider.stop()


@pytest.fixture
def login_app(make_app: Callable[..., Flask], openid_provider: OpenIdProvider) -> Flask:
    application = make_app(
        public_base_url=BASE,
        auth_issuer=openid_provider.issuer,
        auth_client_id=openid_provider.client_id,
        auth_client_secret=openid_provider.client_secret,
        auth_scopes="openid email groups",
        auth_group_orgs=(("platform", "acme", None), ("payments", "payments", "admin")),
        terraform_token_ttl_seconds=3600,
    )
    with application.app_context():
        orgs.create_org("acme")
        orgs.create_org("payments")
    return application


def pkce() -> tuple[str, str]:
    """A verifier shaped like Terraform's (a UUID, a dot, nine digits) and its S256 challenge."""
    verifier = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-"
    verifier += f"{secrets.token_hex(6)}.{secrets.randbelow(999999999):09d}"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_url(challenge: str, **changes: str | None) -> str:
    params: dict[str, str | None] = {
        "client_id": "terraform-cli",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "redirect_uri": TERRAFORM_REDIRECT,
        "response_type": "code",
        "state": "terraform-state-123",
    }
    params.update(changes)
    return "/oauth/authorization?" + urlencode({k: v for k, v in params.items() if v is not None})


def fetcher(client: FlaskClient) -> Callable[[str], Callable[..., tuple[int, dict[str, str], str]]]:
    """Our server through the test client (its cookie jar), everything else over real HTTP."""
    browser = requests.Session()

    def ours(method: str, url: str, data: dict[str, str] | None) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(url)
        response = client.open(parts.path + (f"?{parts.query}" if parts.query else ""), method=method, data=data)
        return response.status_code, dict(response.headers), response.get_data(as_text=True)

    return lambda url: ours if url.startswith(BASE + "/") else requests_fetch(browser)


def sign_in(client: FlaskClient, login: str, challenge: str, **changes: str | None) -> tuple[str, int, str]:
    """Start at the authorization endpoint and sign in at the provider; returns where the browser ended."""
    return browse(BASE + authorization_url(challenge, **changes), fetcher(client), login, on_loopback)


def code_from(url: str, state: str = "terraform-state-123") -> str:
    query = parse_qs(urlsplit(url).query)
    assert query.get("state") == [state], url
    assert "code" in query, url
    return query["code"][0]


def redeem(
    client: FlaskClient, code: str, verifier: str, changes: dict[str, str | None] | None = None
) -> tuple[int, dict[str, object]]:
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": TERRAFORM_REDIRECT,
        "client_id": "terraform-cli",
        "code_verifier": verifier,
    }
    form.update(changes or {})
    response = client.post("/oauth/token", data={k: v for k, v in form.items() if v is not None})
    return response.status_code, response.get_json()


def test_discovery_offers_login_v1_only_with_an_identity_provider(login_app: Flask, app: Flask) -> None:
    document = login_app.test_client().get("/.well-known/terraform.json").get_json()
    assert document["login.v1"] == {
        "client": "terraform-cli",
        "grant_types": ["authz_code"],
        "authz": "/oauth/authorization",
        "token": "/oauth/token",
        "ports": [10000, 10010],
    }
    assert "login.v1" not in app.test_client().get("/.well-known/terraform.json").get_json()
    assert app.test_client().get(authorization_url("x" * 43)).status_code == 404
    assert app.test_client().post("/oauth/token", data={"grant_type": "authorization_code"}).status_code == 404


def test_sign_in_then_token_for_the_users_one_organization(login_app: Flask) -> None:
    client = login_app.test_client()
    verifier, challenge = pkce()
    url, _status, _body = sign_in(client, "alice", challenge)
    assert url.startswith(TERRAFORM_REDIRECT + "?")
    status, body = redeem(client, code_from(url), verifier)
    assert status == 200, body
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    secret = str(body["access_token"])
    account = client.get("/api/v2/account/details", headers={"Authorization": f"Bearer {secret}"})
    assert account.status_code == 200
    assert account.get_json()["data"]["attributes"]["email"] == "alice@example.test"
    with login_app.app_context():
        token = db.session.scalar(db.select(ApiToken).where(ApiToken.description == "terraform login"))
        assert token is not None and token.organization.name == "acme" and token.user.subject == "alice"
        assert token.expires_at is not None
        assert timedelta(minutes=59) < token.expires_at - token.created_at <= timedelta(hours=1)
        # Codes are kept only as hashes.
        assert db.session.scalar(db.select(AuthorizationCode.code_hash)) != code_from(url)
        assert orgs.is_member(orgs.get_org("acme").id, token.user.id)  # type: ignore[union-attr]


def test_a_user_whose_groups_map_to_two_organizations_gets_access_denied(login_app: Flask) -> None:
    url, _status, _body = sign_in(login_app.test_client(), "bob", pkce()[1])
    query = parse_qs(urlsplit(url).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["terraform-state-123"]
    assert "several organizations" in query["error_description"][0] and "code" not in query


def test_a_user_whose_groups_map_to_nothing_gets_access_denied(login_app: Flask) -> None:
    url, _status, _body = sign_in(login_app.test_client(), "carol", pkce()[1])
    query = parse_qs(urlsplit(url).query)
    assert query["error"] == ["access_denied"] and "no organization" in query["error_description"][0]


@pytest.mark.parametrize(
    "changes, description",
    [
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"client_id": None}, "invalid_client"),
        ({"redirect_uri": "http://evil.example:10003/login"}, "invalid_request"),
        ({"redirect_uri": "https://localhost:10003/login"}, "invalid_request"),
        ({"redirect_uri": "http://localhost:9999/login"}, "invalid_request"),
        ({"redirect_uri": "http://localhost:10011/login"}, "invalid_request"),
        ({"redirect_uri": "http://localhost/login"}, "invalid_request"),
        ({"redirect_uri": "http://user@localhost:10003/login"}, "invalid_request"),
        ({"redirect_uri": "http://localhost.evil.example:10003/login"}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
    ],
)
def test_unknown_client_or_unsafe_redirect_is_a_page_never_a_redirect(
    login_app: Flask, changes: dict[str, str | None], description: str
) -> None:
    response = login_app.test_client().get(authorization_url(pkce()[1], **changes))
    assert response.status_code == 400 and "Location" not in response.headers
    assert response.mimetype == "text/html" and description in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "changes, error, words",
    [
        ({"code_challenge": None}, "invalid_request", "code challenge required"),
        ({"code_challenge_method": "plain"}, "invalid_request", "transform algorithm not supported"),
        ({"code_challenge_method": None}, "invalid_request", "transform algorithm not supported"),
        ({"code_challenge": "short"}, "invalid_request", "43-128"),
        ({"response_type": "token"}, "unsupported_response_type", "response_type=code"),
    ],
)
def test_bad_requests_from_the_right_client_go_back_with_an_oauth_error(
    login_app: Flask, changes: dict[str, str | None], error: str, words: str
) -> None:
    response = login_app.test_client().get(authorization_url(pkce()[1], **changes))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(TERRAFORM_REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == [error] and words in query["error_description"][0]
    assert query["state"] == ["terraform-state-123"] and "code" not in query


def test_tampered_state_at_the_callback_is_refused(login_app: Flask, openid_provider: OpenIdProvider) -> None:
    client = login_app.test_client()
    # Stop at our callback: the browser arrives there with the provider's code and the state we sent.
    url, _status, _body = browse(
        BASE + authorization_url(pkce()[1]), fetcher(client), "alice", lambda u: u.startswith(CALLBACK + "?")
    )
    query = parse_qs(urlsplit(url).query)
    tampered = urlencode({"code": query["code"][0], "state": query["state"][0] + "x", "iss": openid_provider.issuer})
    response = client.get(f"/oauth/callback?{tampered}")
    assert response.status_code == 400 and "Location" not in response.headers
    assert "access_denied" in response.get_data(as_text=True)
    assert "mismatching_state" in response.get_data(as_text=True)
    with login_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuthorizationCode)) == 0


def test_callback_without_a_login_in_progress_is_refused(login_app: Flask) -> None:
    response = login_app.test_client().get("/oauth/callback?code=abc&state=def")
    assert response.status_code == 400 and "invalid_request" in response.get_data(as_text=True)


def test_a_forged_session_cookie_is_not_a_login_in_progress(login_app: Flask) -> None:
    client = login_app.test_client()
    assert client.get(authorization_url(pkce()[1])).status_code == 302
    # The cookie is signed with OPENTACO_SECRET_KEY: a value made up by the browser is no session at all.
    client.set_cookie("statesman_signin", "eyJ0ZXJyYWZvcm1fbG9naW4iOnt9fQ.forged.signature", domain="localhost")
    response = client.get("/oauth/callback?code=abc&state=def")
    assert response.status_code == 400 and "no terraform login is in progress" in response.get_data(as_text=True)


@pytest.fixture
def issued(login_app: Flask) -> tuple[FlaskClient, str, str]:
    """A test client, a fresh code from a real sign-in as alice, and its verifier."""
    client = login_app.test_client()
    verifier, challenge = pkce()
    url, _status, _body = sign_in(client, "alice", challenge)
    return client, code_from(url), verifier


def test_a_code_is_single_use_and_its_reuse_revokes_the_token(issued: tuple[FlaskClient, str, str]) -> None:
    client, code, verifier = issued
    status, body = redeem(client, code, verifier)
    assert status == 200
    secret = str(body["access_token"])
    assert client.get("/api/v2/account/details", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    status, body = redeem(client, code, verifier)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert client.get("/api/v2/account/details", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_wrong_verifier_is_invalid_grant_and_spends_the_code(issued: tuple[FlaskClient, str, str]) -> None:
    client, code, verifier = issued
    status, body = redeem(client, code, pkce()[0])
    assert (status, body["error"]) == (400, "invalid_grant") and "code_verifier" in str(body["error_description"])
    assert redeem(client, code, verifier)[1]["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "changes, status, error",
    [
        ({"redirect_uri": "http://localhost:10004/login"}, 400, "invalid_grant"),
        ({"code": "not-a-code"}, 400, "invalid_grant"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"client_id": None}, 401, "invalid_client"),
        ({"grant_type": "refresh_token"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "invalid_request"),
        ({"code_verifier": None}, 400, "invalid_request"),
        ({"code_verifier": "plain-text-verifier"}, 400, "invalid_grant"),
        ({"code": None}, 400, "invalid_request"),
        ({"redirect_uri": None}, 400, "invalid_request"),
    ],
)
def test_token_requests_refused_with_the_rfc_error(
    issued: tuple[FlaskClient, str, str], changes: dict[str, str | None], status: int, error: str
) -> None:
    client, code, verifier = issued
    got_status, body = redeem(client, code, verifier, changes)
    assert (got_status, body["error"]) == (status, error), body
    assert "access_token" not in body


def test_client_id_by_basic_authentication_without_a_secret(issued: tuple[FlaskClient, str, str]) -> None:
    client, code, verifier = issued
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": TERRAFORM_REDIRECT}
    with_secret = base64.b64encode(b"terraform-cli:guess").decode()
    response = client.post(
        "/oauth/token", data={**form, "code_verifier": verifier}, headers={"Authorization": f"Basic {with_secret}"}
    )
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    basic = base64.b64encode(b"terraform-cli:").decode()
    response = client.post(
        "/oauth/token", data={**form, "code_verifier": verifier}, headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_an_expired_code_is_invalid_grant(issued: tuple[FlaskClient, str, str], login_app: Flask) -> None:
    client, code, verifier = issued
    with login_app.app_context():
        row = db.session.scalar(db.select(AuthorizationCode))
        assert row is not None
        row.expires_at = row.created_at - timedelta(seconds=1)
        db.session.commit()
    status, body = redeem(client, code, verifier)
    assert (status, body["error"]) == (400, "invalid_grant") and "expired" in str(body["error_description"])


def test_racing_redemptions_of_one_code_buy_one_token(login_app: Flask) -> None:
    """Sixteen threads present the same code at once: exactly one wins it (on every metadata database)."""
    client = login_app.test_client()
    _verifier, challenge = pkce()
    url, _status, _body = sign_in(client, "alice", challenge)
    code = code_from(url)
    barrier = threading.Barrier(16)
    results: list[int] = []

    def redeem_once() -> None:
        with login_app.app_context():
            barrier.wait()
            try:
                oauth_codes.redeem_code(code)
                results.append(1)
            except oauth_codes.CodeRefused:
                results.append(0)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=redeem_once) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [0] * 15 + [1]


def test_no_secret_reaches_the_log_even_at_debug_level(
    login_app: Flask, openid_provider: OpenIdProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Codes (ours and the provider's), the PKCE verifiers, the client secret and the token stay out of the log."""
    caplog.set_level(logging.DEBUG)
    client = login_app.test_client()
    verifier, challenge = pkce()
    at_callback, _status, _body = browse(
        BASE + authorization_url(challenge), fetcher(client), "alice", lambda u: u.startswith(CALLBACK + "?")
    )
    provider_code = parse_qs(urlsplit(at_callback).query)["code"][0]
    with client.session_transaction() as pending:
        # Authlib's own PKCE verifier towards the provider (Authlib logs it at debug level unless told not to).
        idp_verifier = next(v["data"]["code_verifier"] for k, v in pending.items() if k.startswith("_state_idp_"))
    finished = client.get(at_callback.removeprefix(BASE))
    code = code_from(finished.headers["Location"])
    status, body = redeem(client, code, verifier)
    assert status == 200
    with client.session_transaction() as session:
        assert not session  # the sign-in's state, nonce and verifier are gone once it is over
    logged = caplog.text
    assert "code issued for alice" in logged  # the log does run at this level
    secrets_used = (
        provider_code,
        idp_verifier,
        code,
        verifier,
        str(body["access_token"]),
        openid_provider.client_secret,
    )
    for secret in secrets_used:
        assert secret not in logged


def test_a_reuse_while_the_first_redemption_is_running_still_revokes(issued: tuple[FlaskClient, str, str]) -> None:
    """The second presentation comes between the first one's redemption and its token: that token dies at once."""
    client, code, _verifier = issued
    app = client.application
    with app.app_context():
        grant = oauth_codes.redeem_code(code)  # the first request won the code ...
        with pytest.raises(oauth_codes.CodeRefused):
            oauth_codes.redeem_code(code)  # ... a second one arrives before its token exists ...
        with pytest.raises(oauth_codes.CodeRefused):
            oauth_codes.token_for_grant(code, grant, timedelta(hours=1))  # ... so the first gets none that works
        token = db.session.scalar(db.select(ApiToken).where(ApiToken.description == "terraform login"))
        assert token is not None and token.revoked_at is not None
