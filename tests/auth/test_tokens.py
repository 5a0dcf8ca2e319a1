"""API tokens on the http backend: hashed at rest, expiry, revocation, last use, scopes and workspace limits."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from app.core.clock import utcnow
from app.extensions import db
from app.models import ApiToken
from app.repositories import orgs, tokens, users, workspaces
from tests.factories import basic, bearer, lock_info, make_token

PATH = "/state/acme/prod"


def state(serial: int, lineage: str = "tok") -> bytes:
    return json.dumps(
        {
            "version": 4,
            "serial": serial,
            "lineage": lineage,
            "outputs": {
                "endpoint": {"value": "https://db.internal", "type": "string"},
                "password": {"value": "pw-value", "type": "string", "sensitive": True},
            },
            "resources": [
                {
                    "mode": "managed",
                    "type": "null_resource",
                    "name": "x",
                    "instances": [{"attributes": {"id": "resource-attribute-42"}}],
                }
            ],
        },
        indent=2,
    ).encode()


LOCK = lock_info()


def token_row(app: Flask, secret: str) -> ApiToken:
    with app.app_context():
        row = db.session.scalar(db.select(ApiToken).where(ApiToken.token_hash == tokens.hash_token(secret)))
        assert row is not None
        db.session.expunge(row)
        return row


def create_token(app: Flask, **options: object) -> str:
    """A token of alice in acme made through the repository (for options the factory lacks)."""
    make_token(app)  # acme and alice with her role
    with app.app_context():
        org = orgs.require_org("acme")
        user = users.get_user_by_subject("alice")
        _, secret = tokens.create_token(org, user, "test", **options)  # type: ignore[arg-type]
        return secret


@pytest.fixture
def written(app, client) -> bytes:
    """acme/prod and acme/staging with one state each, written by an admin token."""
    admin = basic(make_token(app, subject="admin"))
    body = state(1)
    assert client.post(PATH, data=body, headers=admin).status_code == 200
    assert client.post("/state/acme/staging", data=state(1, "stg"), headers=admin).status_code == 200
    return body


def test_tokens_are_stored_hashed(app):
    secret = make_token(app)
    assert secret.startswith("stm_")
    row = token_row(app, secret)
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    random_part = secret.removeprefix("stm_")
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for record in db.session.execute(sa.select(table)).all():
                text = " ".join(str(value) for value in record)
                assert random_part not in text, table.name


def test_basic_with_any_username_and_bearer_both_work(app, client, written):
    secret = make_token(app)
    for headers in (basic(secret), basic(secret, user="alice"), basic(secret, user=""), bearer(secret)):
        response = client.get(PATH, headers=headers)
        assert response.status_code == 200, headers
        assert response.data == written


def test_last_used_at_is_recorded(app, client, written):
    secret = make_token(app)
    assert token_row(app, secret).last_used_at is None
    before = utcnow()
    assert client.get(PATH, headers=basic(secret)).status_code == 200
    used = token_row(app, secret).last_used_at
    assert used is not None
    assert before - timedelta(seconds=1) <= used <= utcnow() + timedelta(seconds=1)


def test_failed_authentication_does_not_touch_last_used(app, client):
    secret = make_token(app)
    assert client.get(PATH, headers=basic(secret + "x")).status_code == 401
    assert token_row(app, secret).last_used_at is None


def test_expired_token_is_401(app, client, written):
    expired = create_token(app, expires_in=timedelta(seconds=-1))
    response = client.get(PATH, headers=basic(expired))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="statesman"'
    assert client.get(PATH, headers=bearer(expired)).status_code == 401


def test_token_stops_working_when_it_expires(app, client, written):
    secret = create_token(app, expires_in=timedelta(days=30))
    assert client.get(PATH, headers=basic(secret)).status_code == 200
    with app.app_context():
        db.session.execute(
            db.update(ApiToken)
            .where(ApiToken.token_hash == tokens.hash_token(secret))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    # A changed row reaches workers once their remembered verification lapses (VERIFIED_TTL_SECONDS).
    tokens.verified_tokens.clear()
    assert client.get(PATH, headers=basic(secret)).status_code == 401


@pytest.mark.slow
def test_token_verification_is_remembered_briefly_but_never_past_expiry(app, client, written):
    secret = create_token(app, expires_in=timedelta(days=30))
    assert client.get(PATH, headers=basic(secret)).status_code == 200
    with app.app_context():
        db.session.execute(db.delete(ApiToken).where(ApiToken.token_hash == tokens.hash_token(secret)))
        db.session.commit()
    assert client.get(PATH, headers=basic(secret)).status_code == 200  # served from the per-process memory
    tokens.verified_tokens.clear()
    assert client.get(PATH, headers=basic(secret)).status_code == 401

    short = create_token(app, expires_in=timedelta(seconds=1))
    assert client.get(PATH, headers=basic(short)).status_code == 200
    time.sleep(1.2)
    assert client.get(PATH, headers=basic(short)).status_code == 401


def test_revoked_token_is_401(app, client, written):
    secret = make_token(app)
    assert client.get(PATH, headers=basic(secret)).status_code == 200
    with app.app_context():
        tokens.revoke_token(token_row(app, secret).id, "test")
    assert client.get(PATH, headers=basic(secret)).status_code == 401
    assert client.get(PATH, headers=bearer(secret)).status_code == 401
    assert client.open(PATH, method="LOCK", data=LOCK, headers=basic(secret)).status_code == 401
    assert token_row(app, secret).revoked_at is not None


def test_revoking_one_token_leaves_the_others(app, client, written):
    first, second = make_token(app), make_token(app)
    with app.app_context():
        tokens.revoke_token(token_row(app, first).id, "test")
    assert client.get(PATH, headers=basic(second)).status_code == 200


def test_outputs_only_token_cannot_read_the_full_state(app, client, written):
    secret = make_token(app, subject="consumer", scope="outputs-only")
    response = client.get(PATH, headers=basic(secret))
    assert response.data != written
    assert b"resource-attribute-42" not in response.data
    assert response.status_code in (200, 403)
    if response.status_code == 200:
        # What terraform_remote_state needs: the outputs, and no resources.
        document = json.loads(response.data)
        assert document["resources"] == []
        assert document["outputs"]["endpoint"]["value"] == "https://db.internal"
        assert document["serial"] == 1


@pytest.mark.parametrize("scope", ["outputs-only", "read-only"])
def test_narrow_scopes_cannot_write_lock_or_delete(app, client, written, scope):
    secret = basic(make_token(app, subject="narrow", scope=scope))
    assert client.post(PATH, data=state(2), headers=secret).status_code == 403
    assert client.open(PATH, method="LOCK", data=LOCK, headers=secret).status_code == 403
    assert client.delete(PATH, headers=secret).status_code == 403
    admin = basic(make_token(app, subject="admin"))
    assert client.get(PATH, headers=admin).data == written


def test_read_only_token_reads_the_exact_state(app, client, written):
    secret = make_token(app, subject="reader", scope="read-only")
    assert client.get(PATH, headers=basic(secret)).data == written


def test_workspace_narrowed_token_only_reaches_its_workspace(app, client, written):
    secret = basic(make_token(app, subject="ci", workspace="prod"))
    assert client.get(PATH, headers=secret).data == written
    assert client.open(PATH, method="LOCK", data=LOCK, headers=secret).status_code == 200
    assert client.post(PATH + "?ID=l1", data=state(2), headers=secret).status_code == 200
    assert client.open(PATH, method="UNLOCK", data=LOCK, headers=secret).status_code == 200

    assert client.get("/state/acme/staging", headers=secret).status_code == 403
    assert client.post("/state/acme/staging", data=state(2, "stg"), headers=secret).status_code == 403
    assert client.open("/state/acme/staging", method="LOCK", data=LOCK, headers=secret).status_code == 403
    assert client.delete("/state/acme/staging", headers=secret).status_code == 403
    # Nor can it create another workspace.
    assert client.post("/state/acme/other", data=state(1), headers=secret).status_code == 403
    with app.app_context():
        assert workspaces.get_workspace(orgs.require_org("acme"), "other") is None


def test_workspace_narrowed_token_through_v1_backend(app, client, written):
    secret = basic(make_token(app, subject="ci", workspace="prod"))
    with app.app_context():
        prod = workspaces.get_workspace(orgs.require_org("acme"), "prod")
        staging = workspaces.get_workspace(orgs.require_org("acme"), "staging")
        assert prod is not None and staging is not None
        prod_id, staging_id = prod.id, staging.id
    assert client.get("/v1/backend/prod", headers=secret).data == written
    assert client.get(f"/v1/backend/{prod_id}", headers=secret).data == written
    assert client.get("/v1/backend/staging", headers=secret).status_code == 403
    assert client.get(f"/v1/backend/{staging_id}", headers=secret).status_code == 403
    assert client.post(f"/v1/backend/{staging_id}", data=state(5, "stg"), headers=secret).status_code == 403


def test_organization_token_without_user(app, client, written):
    secret = basic(make_token(app, subject=None))
    assert client.get(PATH, headers=secret).data == written
    assert client.post(PATH, data=state(2), headers=secret).status_code == 200


def test_token_of_another_org_sees_nothing(app, client, written):
    other = basic(make_token(app, org="globex", subject="gus"))
    assert client.get(PATH, headers=other).status_code == 404
    assert client.post(PATH, data=state(2), headers=other).status_code == 404
    assert client.open(PATH, method="LOCK", data=LOCK, headers=other).status_code == 404
