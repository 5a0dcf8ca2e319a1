"""``flask kms rotate`` re-encrypts every version under the current key; old versions stay readable meanwhile."""

from __future__ import annotations

import dataclasses
import json
import os

from app import create_app
from app.drivers.kms.local import local_key_id
from app.extensions import db
from app.models import StateVersion
from app.runtime import drivers
from tests.factories import basic, make_token


def state(serial: int) -> bytes:
    return json.dumps(
        {"version": 4, "serial": serial, "lineage": "rot", "outputs": {"n": {"value": serial, "type": "number"}}}
    ).encode()


def test_rotation_reencrypts_every_version(config) -> None:
    old_app = create_app(config)
    token = make_token(old_app)
    client = old_app.test_client()
    for serial in range(1, 4):
        assert client.post("/state/acme/prod", data=state(serial), headers=basic(token)).status_code == 200
    with old_app.app_context():
        old_objects = {v.id: v.storage_key for v in db.session.scalars(db.select(StateVersion))}
        db.engine.dispose()
        drivers().close()

    new_key = os.urandom(32)
    rotated = create_app(dataclasses.replace(config, kms_key=new_key, kms_old_keys=(config.kms_key,)))
    client = rotated.test_client()
    # Before rotation: versions written under the old key are still served.
    assert client.get("/state/acme/prod", headers=basic(token)).data == state(3)
    result = rotated.test_cli_runner().invoke(args=["kms", "rotate"])
    assert result.exit_code == 0, result.output
    assert "3 version(s) to re-encrypt" in result.output
    assert "re-encrypted 3/3" in result.output
    with rotated.app_context():
        versions = list(db.session.scalars(db.select(StateVersion)))
        assert {v.kms_key_id for v in versions} == {local_key_id(new_key)}
        assert all(v.storage_key != old_objects[v.id] for v in versions)
        db.engine.dispose()
        drivers().close()

    # Without the old key every version still decrypts: nothing is left under it.
    only_new = create_app(dataclasses.replace(config, kms_key=new_key, kms_old_keys=()))
    response = only_new.test_client().get("/state/acme/prod", headers=basic(token))
    assert response.status_code == 200
    assert response.data == state(3)
    second = only_new.test_cli_runner().invoke(args=["kms", "rotate"])
    assert "0 version(s) to re-encrypt" in second.output
    with only_new.app_context():
        db.engine.dispose()
        drivers().close()
