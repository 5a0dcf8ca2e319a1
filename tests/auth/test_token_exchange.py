"""``/v1/auth/exchange`` and ``/v1/auth/token``: id token for access + refresh token, rotation, reuse detection.

The identity provider is the loopback issuer of the id-token tests, which signs whatever claims a test asks for;
the honest token is the control, so each refusal is the check under test.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from app.core.clock import utcnow
from app.extensions import db
from app.models import ApiToken, RefreshToken
from app.repositories import orgs
from app.repositories.tokens import LAST_USED_GRANULARITY, hash_token, verified_tokens
from tests.auth.test_oidc_id_token import CLIENT_ID, SigningIssuer
from tests.factories import bearer

ACCOUNT = "/api/v2/account/details"


@pytest.fixture(scope="module")
def issuer() -> Iterator[SigningIssuer]:
    signing = SigningIssuer()
    yield signing
    signing.close()


@pytest.fixture
def idp_config(issuer: SigningIssuer) -> dict[str, Any]:
    issuer.claims, issuer.published = issuer.honest, issuer.key
    return {
        "public_base_url": "http://localhost",
        "auth_issuer": issuer.url,
        "auth_client_id": CLIENT_ID,
        "auth_client_secret": "rp-secret",
        "auth_group_orgs": (("platform", "acme", None),),
    }


@pytest.fixture
def xapp(make_app: Callable[..., Flask], idp_config: dict[str, Any]) -> Flask:
    application = make_app(**idp_config)
    with application.app_context():
        orgs.create_org("acme")
        orgs.create_org("other")
    return application


@pytest.fixture
def client(xapp: Flask) -> FlaskClient:
    return xapp.test_client()


def id_token(issuer: SigningIssuer, key: Any = None, **changes: Any) -> str:
    """An id token as a client holds it after signing in (no nonce: nobody here sent an authorization request)."""
    claims = {k: v for k, v in issuer.honest("").items() if k != "nonce"}
    claims.update(changes)
    return jwt.encode(claims, key or issuer.key, algorithm="RS256", headers={"kid": "k1"})


def exchange(client: FlaskClient, token: str) -> tuple[int, dict[str, Any]]:
    response = client.post("/v1/auth/exchange", data={"id_token": token})
    return response.status_code, response.get_json()


def refresh(client: FlaskClient, refresh_token: str) -> tuple[int, dict[str, Any]]:
    response = client.post("/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token})
    return response.status_code, response.get_json()


def api_tokens(app: Flask) -> list[ApiToken]:
    with app.app_context():
        found = list(db.session.scalars(db.select(ApiToken)))
        db.session.expunge_all()
        return found


# --- exchange --------------------------------------------------------------------------------------------------


def test_a_valid_id_token_buys_an_access_token_for_the_users_organization(
    xapp: Flask, client: FlaskClient, issuer: SigningIssuer
) -> None:
    response = client.post("/v1/auth/exchange", data={"id_token": id_token(issuer)})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "bearer" and body["organization"] == "acme"
    assert body["access_token"].startswith("eyJ") and body["refresh_token"].startswith("stmr_")
    assert 0 < body["expires_in"] <= 3600
    account = client.get(ACCOUNT, headers=bearer(body["access_token"]))
    assert account.status_code == 200 and account.get_json()["data"]["attributes"]["username"] == "dana"
    assert client.get("/api/v2/organizations/acme/workspaces", headers=bearer(body["access_token"])).status_code == 200
    assert client.get("/api/v2/organizations/other/workspaces", headers=bearer(body["access_token"])).status_code in (
        403,
        404,
    )
    # Bounded like a sign-in token: one organization, the user's own, full scope of the user's role, expiring.
    (token,) = api_tokens(xapp)
    assert token.expires_at is not None and token.expires_at <= utcnow() + timedelta(hours=1, seconds=5)
    assert token.workspace_name is None and token.description == "token exchange"
    with xapp.app_context():
        (row,) = db.session.scalars(db.select(RefreshToken))
        assert row.token_hash == hash_token(body["refresh_token"])  # the refresh token is stored hashed only
        assert body["refresh_token"] not in row.token_hash


def test_the_access_lifetime_follows_a_shorter_sign_in_token_ttl(
    make_app: Callable[..., Flask], idp_config: dict[str, Any], issuer: SigningIssuer
) -> None:
    app = make_app(**idp_config, terraform_token_ttl_seconds=600)
    with app.app_context():
        orgs.create_org("acme")
    status, body = exchange(app.test_client(), id_token(issuer))
    assert status == 200 and body["expires_in"] == 600


@pytest.mark.parametrize(
    "changes, why",
    [
        ({"aud": "someone-else"}, "aud"),
        ({"aud": "someone-else", "azp": CLIENT_ID}, "aud"),
        ({"iss": "http://127.0.0.1:1"}, "iss"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "expired"),
        ({"sub": ""}, "sub"),
    ],
    ids=["wrong-aud", "wrong-aud-our-azp", "wrong-iss", "expired", "empty-sub"],
)
def test_an_untrustworthy_id_token_is_refused(
    xapp: Flask, client: FlaskClient, issuer: SigningIssuer, changes: dict[str, Any], why: str
) -> None:
    status, body = exchange(client, id_token(issuer, **changes))
    assert status == 400 and body["error"] == "invalid_grant" and why in body["error_description"], body
    assert "access_token" not in body and "refresh_token" not in body
    assert api_tokens(xapp) == []


def test_an_id_token_signed_by_an_unpublished_key_is_refused(
    xapp: Flask, client: FlaskClient, issuer: SigningIssuer
) -> None:
    unpublished = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, body = exchange(client, id_token(issuer, key=unpublished))
    assert status == 400 and body["error"] == "invalid_grant" and "bad_signature" in body["error_description"], body
    assert api_tokens(xapp) == []


@pytest.mark.parametrize("value", ["", "not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJkYW5hIn0."])
def test_a_missing_or_malformed_id_token_is_refused(xapp: Flask, client: FlaskClient, value: str) -> None:
    status, body = exchange(client, value)
    assert status == 400 and body["error"] in ("invalid_request", "invalid_grant"), body
    assert api_tokens(xapp) == []


def test_repeated_parameters_are_an_invalid_request(client: FlaskClient, issuer: SigningIssuer) -> None:
    token = id_token(issuer)
    response = client.post("/v1/auth/exchange", data={"id_token": [token, token]})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_a_user_in_no_organization_gets_no_token(xapp: Flask, client: FlaskClient, issuer: SigningIssuer) -> None:
    status, body = exchange(client, id_token(issuer, groups=["elsewhere"]))
    assert status == 400 and body["error"] == "invalid_grant" and "no organization" in body["error_description"]
    assert api_tokens(xapp) == []


def test_without_an_identity_provider_there_is_no_exchange(app: Flask) -> None:
    response = app.test_client().post("/v1/auth/exchange", data={"id_token": "x"})
    assert response.status_code == 404


# --- refresh ---------------------------------------------------------------------------------------------------


@pytest.fixture
def signed_in(client: FlaskClient, issuer: SigningIssuer) -> dict[str, Any]:
    status, body = exchange(client, id_token(issuer))
    assert status == 200, body
    return body


def test_refresh_rotates_both_tokens(client: FlaskClient, signed_in: dict[str, Any]) -> None:
    status, body = refresh(client, signed_in["refresh_token"])
    assert status == 200, body
    assert body["refresh_token"] != signed_in["refresh_token"] and body["access_token"] != signed_in["access_token"]
    assert client.get(ACCOUNT, headers=bearer(body["access_token"])).status_code == 200
    again, second = refresh(client, body["refresh_token"])  # the new one is good for exactly one refresh too
    assert again == 200 and second["refresh_token"] not in (body["refresh_token"], signed_in["refresh_token"])


def test_a_reused_refresh_token_revokes_the_whole_family_at_once(
    xapp: Flask, client: FlaskClient, signed_in: dict[str, Any], issuer: SigningIssuer
) -> None:
    _status, rotated = refresh(client, signed_in["refresh_token"])
    # Both access tokens are in use, so this worker remembers them as verified.
    for token in (signed_in["access_token"], rotated["access_token"]):
        assert client.get(ACCOUNT, headers=bearer(token)).status_code == 200
    # An unrelated sign-in of the same user is another family and survives.
    _status, unrelated = exchange(client, id_token(issuer))
    status, body = refresh(client, signed_in["refresh_token"])
    assert status == 400 and body["error"] == "invalid_grant" and "already used" in body["error_description"]
    for token in (signed_in["access_token"], rotated["access_token"]):
        assert client.get(ACCOUNT, headers=bearer(token)).status_code == 401  # on this worker: immediately
    status, body = refresh(client, rotated["refresh_token"])
    assert status == 400 and body["error"] == "invalid_grant" and "revoked" in body["error_description"]
    assert client.get(ACCOUNT, headers=bearer(unrelated["access_token"])).status_code == 200
    assert refresh(client, unrelated["refresh_token"])[0] == 200


def test_racing_refreshes_of_one_token_have_exactly_one_winner(xapp: Flask, signed_in: dict[str, Any]) -> None:
    barrier = threading.Barrier(8)
    results: list[tuple[int, dict[str, Any]]] = []

    def attempt() -> None:
        client = xapp.test_client()
        barrier.wait()
        results.append(refresh(client, signed_in["refresh_token"]))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 8
    assert all(body["error"] == "invalid_grant" for status, body in results if status != 200), results
    # Exactly one request spent the token and minted its successor (the conditional UPDATE has one winner) ...
    with xapp.app_context():
        family = list(db.session.scalars(db.select(RefreshToken)))
        minted = db.session.scalar(db.select(sa.func.count()).select_from(ApiToken))
    assert len(family) == 2 and minted == 2
    # ... and the others presented a spent token, which is a replay: the family, the winner's tokens included, is
    # revoked. The winner answers 200 only if it finished before the first loser revoked (its tokens die after).
    assert sum(status == 200 for status, _body in results) <= 1
    assert all(row.revoked_at is not None for row in family)
    assert all(token.revoked_at is not None for token in api_tokens(xapp))
    for status, body in results:
        if status == 200:
            assert xapp.test_client().get(ACCOUNT, headers=bearer(body["access_token"])).status_code == 401
            assert refresh(xapp.test_client(), body["refresh_token"])[0] == 400


@pytest.mark.parametrize(
    "form, error",
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "dana", "password": "x"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "stmr_unknown"}, "invalid_grant"),
        ({"grant_type": ["refresh_token", "refresh_token"], "refresh_token": "stmr_x"}, "invalid_request"),
    ],
    ids=["no-grant-type", "password", "authorization-code", "no-refresh-token", "unknown", "repeated"],
)
def test_bad_token_requests_get_oauth_errors(client: FlaskClient, form: dict[str, Any], error: str) -> None:
    response = client.post("/v1/auth/token", data=form)
    assert response.status_code == 400 and response.get_json()["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


def test_an_access_token_is_not_a_refresh_token(client: FlaskClient, signed_in: dict[str, Any]) -> None:
    status, body = refresh(client, signed_in["access_token"])
    assert status == 400 and body["error"] == "invalid_grant"
    assert client.get(ACCOUNT, headers=bearer(signed_in["access_token"])).status_code == 200


def test_an_expired_refresh_token_is_refused(xapp: Flask, client: FlaskClient, signed_in: dict[str, Any]) -> None:
    with xapp.app_context():
        db.session.execute(db.update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    status, body = refresh(client, signed_in["refresh_token"])
    assert status == 400 and body["error"] == "invalid_grant" and "expired" in body["error_description"]


def test_leaving_the_organization_ends_the_family(xapp: Flask, client: FlaskClient, signed_in: dict[str, Any]) -> None:
    from app.models import Membership

    with xapp.app_context():
        db.session.execute(db.delete(Membership))
        db.session.commit()
    status, body = refresh(client, signed_in["refresh_token"])
    assert status == 400 and body["error"] == "invalid_grant" and "no longer a member" in body["error_description"]
    assert all(token.revoked_at is not None for token in api_tokens(xapp))


def test_tokens_work_after_a_restart(
    make_app: Callable[..., Flask], xapp: Flask, signed_in: dict[str, Any], idp_config: dict[str, Any]
) -> None:
    """Nothing of a sign-in lives in a worker's memory: a new app on the same database honours both tokens."""
    verified_tokens.clear()
    restarted = make_app(**idp_config).test_client()
    assert restarted.get(ACCOUNT, headers=bearer(signed_in["access_token"])).status_code == 200
    status, body = refresh(restarted, signed_in["refresh_token"])
    assert status == 200 and xapp.test_client().get(ACCOUNT, headers=bearer(body["access_token"])).status_code == 200


def test_no_token_reaches_the_log(client: FlaskClient, issuer: SigningIssuer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    given = id_token(issuer)
    _status, first = exchange(client, given)
    _status, second = refresh(client, first["refresh_token"])
    refresh(client, first["refresh_token"])  # a replay, revoking the family
    exchange(client, id_token(issuer, aud="someone-else"))
    secrets_used = [given, first["access_token"], first["refresh_token"], second["access_token"]]
    secrets_used.append(second["refresh_token"])
    for secret in secrets_used:
        assert secret not in caplog.text


# --- last use --------------------------------------------------------------------------------------------------


def test_last_use_costs_at_most_one_write_per_granularity(
    xapp: Flask, client: FlaskClient, signed_in: dict[str, Any]
) -> None:
    """Many requests, one ``last_used_at`` write; a use after LAST_USED_GRANULARITY records the new time."""
    headers = bearer(signed_in["access_token"])
    writes: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    with xapp.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            verified_tokens.clear()  # even a worker that forgot the token writes only once per granularity
            for _ in range(10):
                assert client.get(ACCOUNT, headers=headers).status_code == 200
        assert len(writes) == 1
        (token,) = api_tokens(xapp)
        assert token.last_used_at is not None and utcnow() - token.last_used_at < timedelta(seconds=30)
        aged = utcnow() - LAST_USED_GRANULARITY - timedelta(seconds=1)
        with xapp.app_context():
            db.session.execute(db.update(ApiToken).values(last_used_at=aged))
            db.session.commit()
        writes.clear()
        assert client.get(ACCOUNT, headers=headers).status_code == 200  # still remembered: no database at all
        assert writes == []
        verified_tokens.clear()
        assert client.get(ACCOUNT, headers=headers).status_code == 200
        assert len(writes) == 1
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    (token,) = api_tokens(xapp)
    assert token.last_used_at is not None and token.last_used_at > aged + timedelta(seconds=1)


def test_another_worker_stops_honouring_a_revoked_family_within_the_bound(
    xapp: Flask, client: FlaskClient, signed_in: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that did not see the revocation forgets the access token after VERIFIED_TTL_SECONDS at most."""
    from types import SimpleNamespace

    from app.core import ttl_cache
    from app.repositories.tokens import VERIFIED_TTL_SECONDS

    headers = bearer(signed_in["access_token"])
    assert client.get(ACCOUNT, headers=headers).status_code == 200  # remembered as verified
    refresh(client, signed_in["refresh_token"])
    with monkeypatch.context() as other_worker:
        other_worker.setattr(verified_tokens, "clear", lambda: None)  # the revoking worker's clear does not reach it
        assert refresh(client, signed_in["refresh_token"])[1]["error"] == "invalid_grant"  # the replay
        assert client.get(ACCOUNT, headers=headers).status_code == 200  # still remembered here ...
        later = time.monotonic() + VERIFIED_TTL_SECONDS + 0.5
        other_worker.setattr(ttl_cache, "time", SimpleNamespace(monotonic=lambda: later))
        assert client.get(ACCOUNT, headers=headers).status_code == 401  # ... for VERIFIED_TTL_SECONDS at most


def test_flask_tokens_list_shows_limit_description_scope_and_times(
    xapp: Flask, client: FlaskClient, signed_in: dict[str, Any]
) -> None:
    runner = xapp.test_cli_runner()
    assert client.get(ACCOUNT, headers=bearer(signed_in["access_token"])).status_code == 200
    created = runner.invoke(
        args=["tokens", "create", "--org", "acme", "--read-only", "--workspace", "prod", "--description", "ci\tjob 7"]
    )
    assert created.exit_code == 0, created.output
    result = runner.invoke(args=["tokens", "list", "--org", "acme"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    limited = next(line.split("\t") for line in lines if "workspace=prod" in line)
    exchanged = next(line.split("\t") for line in lines if "workspace=*" in line)
    assert limited[1:5] == ["(organization)", "read-only", "active", "workspace=prod"]
    assert limited[-1] == "description=ci job 7" and "last_used=never" in limited and "expires=never" in limited
    assert exchanged[1:5] == ["dana", "full", "active", "workspace=*"]
    assert exchanged[-1] == "description=token exchange"
    fields = dict(field.split("=", 1) for field in exchanged[4:])
    for name in ("created", "last_used", "expires"):
        assert fields[name].endswith("Z") and fields[name][:4].isdigit(), fields
    for secret in (signed_in["access_token"], signed_in["refresh_token"]):
        assert secret not in result.output


def test_an_unreachable_provider_is_temporarily_unavailable(
    make_app: Callable[..., Flask], idp_config: dict[str, Any], issuer: SigningIssuer
) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nobody listens once the socket is closed
    app = make_app(**{**idp_config, "auth_issuer": f"http://127.0.0.1:{port}"})
    status, body = exchange(app.test_client(), id_token(issuer))
    assert status == 503 and body["error"] == "temporarily_unavailable", body
    assert api_tokens(app) == []
