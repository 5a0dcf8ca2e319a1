"""Static users (``AUTH_BASIC_USERS``) with bcrypt and argon2 hashes, and authentication disabled."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import bcrypt
import pytest
from argon2 import PasswordHasher
from flask import Flask

from app.extensions import db
from app.models import AuditEvent
from app.repositories import orgs, workspaces
from config import load_config
from tests.factories import basic, lock_info, make_org, make_token

PATH = "/state/acme/prod"
ALICE_PASSWORD = "alice-correct-horse"
BOB_PASSWORD = "bob-battery-staple"


def state(serial: int) -> bytes:
    return json.dumps({"version": 4, "serial": serial, "lineage": "static", "outputs": {}, "resources": []}).encode()


LOCK = lock_info()


@pytest.fixture(scope="module")
def bcrypt_hash() -> str:
    return bcrypt.hashpw(ALICE_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture(scope="module")
def argon2_hash() -> str:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(BOB_PASSWORD)


@pytest.fixture
def static_app(make_app, bcrypt_hash, argon2_hash) -> Flask:
    application = make_app(auth_basic_users=(("alice", bcrypt_hash), ("bob", argon2_hash)))
    make_org(application, "acme")
    return application


@pytest.mark.parametrize(
    ("user", "password"), [("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)], ids=["bcrypt", "argon2"]
)
def test_static_user_can_use_the_backend(static_app, user, password):
    client = static_app.test_client()
    auth = basic(password, user=user)
    assert client.open(PATH, method="LOCK", data=LOCK, headers=auth).status_code == 200
    assert client.post(PATH + "?ID=l1", data=state(1), headers=auth).status_code == 200
    assert client.open(PATH, method="UNLOCK", data=LOCK, headers=auth).status_code == 200
    assert client.get(PATH, headers=auth).data == state(1)
    with static_app.app_context():
        actors = {e.actor for e in db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "state.write"))}
    assert actors == {user}


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("alice", "wrong"),
        ("bob", "wrong"),
        ("alice", BOB_PASSWORD),
        ("bob", ALICE_PASSWORD),
        ("alice", ""),
        ("carol", ALICE_PASSWORD),
        ("Alice", ALICE_PASSWORD),
    ],
    ids=["bcrypt-wrong", "argon2-wrong", "alice-with-bobs", "bob-with-alices", "empty", "unknown-user", "case"],
)
def test_wrong_password_is_401(static_app, user, password):
    response = static_app.test_client().get(PATH, headers=basic(password, user=user))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="statesman"'


def test_wrong_password_after_a_success_is_still_401(static_app):
    client = static_app.test_client()
    assert client.post(PATH, data=state(1), headers=basic(ALICE_PASSWORD, user="alice")).status_code == 200
    assert client.get(PATH, headers=basic(ALICE_PASSWORD + "x", user="alice")).status_code == 401


def test_tokens_still_work_beside_static_users(static_app):
    token = make_token(static_app)
    client = static_app.test_client()
    assert client.post(PATH, data=state(1), headers=basic(token, user="terraform")).status_code == 200
    # A static user's name with a token as password is checked against the user's hash, not as a token.
    assert client.get(PATH, headers=basic(token, user="alice")).status_code == 401


def test_auth_basic_disabled_turns_static_users_off(make_app, bcrypt_hash, argon2_hash):
    application = make_app(auth_basic_users=(("alice", bcrypt_hash), ("bob", argon2_hash)), auth_basic_enabled=False)
    make_org(application, "acme")
    client = application.test_client()
    assert client.get(PATH, headers=basic(ALICE_PASSWORD, user="alice")).status_code == 401
    assert client.post(PATH, data=state(1), headers=basic(BOB_PASSWORD, user="bob")).status_code == 401
    token = make_token(application)
    assert client.post(PATH, data=state(1), headers=basic(token)).status_code == 200


def test_static_users_from_the_environment(bcrypt_hash, tmp_path: Path):
    users_file = tmp_path / "users"
    users_file.write_text(f"# static users\ncarol:{bcrypt_hash}\n\n")
    env = {
        "KMS_KEY": base64.b64encode(os.urandom(32)).decode(),
        "OPENTACO_SECRET_KEY": "s",
        "STATESMAN_DATA_DIR": str(tmp_path),
        "AUTH_BASIC_USERS": f"alice:{bcrypt_hash}, dave:{bcrypt_hash}",
        "AUTH_BASIC_USERS_FILE": str(users_file),
    }
    config = load_config(env)
    assert config.auth_basic_users == (("alice", bcrypt_hash), ("dave", bcrypt_hash), ("carol", bcrypt_hash))


def test_argon2_user_from_the_environment(argon2_hash, tmp_path: Path):
    env = {
        "KMS_KEY": base64.b64encode(os.urandom(32)).decode(),
        "OPENTACO_SECRET_KEY": "s",
        "STATESMAN_DATA_DIR": str(tmp_path),
        "AUTH_BASIC_USERS": f"bob:{argon2_hash}",
    }
    assert load_config(env).auth_basic_users == (("bob", argon2_hash),)


# --- authentication disabled ---------------------------------------------------------------------------------


def test_auth_disabled_acts_as_admin_and_creates_the_org(make_app):
    application = make_app(auth_disabled=True)
    client = application.test_client()
    with application.app_context():
        assert orgs.get_org("devorg") is None
    assert client.get("/state/devorg/prod").status_code == 404
    with application.app_context():
        assert orgs.get_org("devorg") is None  # reads never create anything
    assert client.post("/state/devorg/prod", data=state(1)).status_code == 200
    assert client.get("/state/devorg/prod").data == state(1)
    with application.app_context():
        org = orgs.get_org("devorg")
        assert org is not None
        assert workspaces.get_workspace(org, "prod") is not None
        actors = {e.actor for e in db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "state.write"))}
    assert actors == {"local-admin"}
    # Locks also create, and force-unlock is allowed.
    assert client.open("/state/lockorg/ws", method="LOCK", data=LOCK).status_code == 200
    assert client.open("/state/lockorg/ws", method="UNLOCK", data=b"").status_code == 200
    # Any credentials are ignored rather than rejected.
    assert client.get("/state/devorg/prod", headers=basic("anything")).status_code == 200


def test_auth_disabled_still_checks_names(make_app):
    client = make_app(auth_disabled=True).test_client()
    response = client.post("/state/.hidden/prod", data=state(1))
    assert response.status_code == 400
    assert "1-90 characters" in response.json["error"]


def test_unknown_users_and_wrong_passwords_get_the_same_answer(static_app):
    client = static_app.test_client()
    wrong_password = client.get(PATH, headers=basic(ALICE_PASSWORD + "x", user="alice"))
    unknown_user = client.get(PATH, headers=basic(ALICE_PASSWORD, user="nobody"))
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.data == unknown_user.data
    assert wrong_password.headers["WWW-Authenticate"] == unknown_user.headers["WWW-Authenticate"]
