"""A version written under a key this server does not have (a rotation started before every server knew the new
key) answers 503 naming the key id, in every API's error shape, and never shows key material."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable

import pytest
from flask import Flask

from app.drivers.kms.local import local_key_id
from app.extensions import db
from app.models import StateVersion
from tests.factories import basic, bearer, make_token

NEW_KEY = os.urandom(32)
STATE = json.dumps({"version": 4, "serial": 1, "lineage": "rot", "outputs": {}}).encode()


@pytest.fixture
def behind(make_app: Callable[..., Flask], app: Flask) -> tuple[Flask, str, str]:
    """``app`` (the old key only) after a server with the new key wrote a version; its token and version id."""
    ahead = make_app(kms_key=NEW_KEY, kms_old_keys=(app.extensions["statesman"].config.kms_key,))
    token = make_token(ahead)
    assert ahead.test_client().post("/state/acme/prod", data=STATE, headers=basic(token)).status_code == 200
    with ahead.app_context():
        version_id = db.session.scalars(db.select(StateVersion.id)).one()
    return app, token, version_id


def assert_names_the_key(status: int, body: bytes) -> None:
    assert status == 503, body
    text = body.decode()
    assert local_key_id(NEW_KEY) in text
    assert base64.b64encode(NEW_KEY).decode() not in text and NEW_KEY.hex() not in text


def test_http_backend_read(behind: tuple[Flask, str, str]) -> None:
    app, token, _ = behind
    response = app.test_client().get("/state/acme/prod", headers=basic(token))
    assert_names_the_key(response.status_code, response.data)
    assert local_key_id(NEW_KEY) in response.json["error"]


def test_tfc_download(behind: tuple[Flask, str, str]) -> None:
    app, token, version_id = behind
    response = app.test_client().get(f"/api/v2/state-versions/{version_id}/download", headers=bearer(token))
    assert_names_the_key(response.status_code, response.data)
    (error,) = response.json["errors"]
    assert error["status"] == "503" and local_key_id(NEW_KEY) in error["detail"]


def test_management_api_download(behind: tuple[Flask, str, str]) -> None:
    app, token, _ = behind
    response = app.test_client().get("/v1/units/prod/download", headers=bearer(token))
    assert_names_the_key(response.status_code, response.data)
    assert local_key_id(NEW_KEY) in response.json["message"]
