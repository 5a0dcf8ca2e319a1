"""``flask kms rotate`` re-encrypts every version (and its JSON copies) under the current key; old versions stay
readable meanwhile."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os

from app import create_app
from app.drivers.kms.local import local_key_id
from app.extensions import db, drivers
from app.models import StateVersion
from app.repositories.state_versions import JSON_OUTPUTS, open_copy
from tests.factories import basic, make_token
from tests.tfc_api.conftest import Api


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


def test_rotation_reencrypts_json_copies(config) -> None:
    old_app = create_app(config)
    api = Api(old_app.test_client(), make_token(old_app))
    workspace = api.create_workspace("prod")
    api.lock(workspace["id"])
    body, copy = state(1), json.dumps({"format_version": "1.0", "values": {}}).encode()
    attributes = {
        "serial": 1,
        "md5": hashlib.md5(body).hexdigest(),
        "lineage": "rot",
        "state": base64.b64encode(body).decode(),
        "json-state": base64.b64encode(copy).decode(),
        "json-state-outputs": base64.b64encode(b'{"n": {"sensitive": false, "value": 1, "type": "number"}}').decode(),
    }
    created = api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": attributes}})
    assert created.status_code == 201, created.json
    version_id = created.json["data"]["id"]
    with old_app.app_context():
        db.engine.dispose()
        drivers().close()

    new_key = os.urandom(32)
    rotated = create_app(dataclasses.replace(config, kms_key=new_key, kms_old_keys=(config.kms_key,)))
    result = rotated.test_cli_runner().invoke(args=["kms", "rotate"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1/1" in result.output
    with rotated.app_context():
        db.engine.dispose()
        drivers().close()

    only_new = create_app(dataclasses.replace(config, kms_key=new_key, kms_old_keys=()))
    api = Api(only_new.test_client(), api.token)
    assert api.get(f"state-versions/{version_id}/json-download").data == copy
    with only_new.app_context():
        version = db.session.get(StateVersion, version_id)
        assert version is not None
        assert {version.kms_key_id, version.json_state_kms_key_id, version.json_outputs_kms_key_id} == {
            local_key_id(new_key)
        }
        assert b"".join(open_copy(version, JSON_OUTPUTS)).startswith(b'{"n"')
        db.engine.dispose()
        drivers().close()


def test_rotation_reseals_the_signing_keys(config) -> None:
    """The private keys of /oidc/jwks.json move to the new KMS key too, so the old one can really be removed."""
    from app.models import SigningKey
    from app.repositories import signing_keys

    old_app = create_app(config)
    with old_app.app_context():
        token = signing_keys.sign_access_token({"sub": "dana", "aud": "statesman"})
        kid = signing_keys.current_signing_key().kid
        db.engine.dispose()
        drivers().close()
    new_key = os.urandom(32)
    rotated = create_app(dataclasses.replace(config, kms_key=new_key, kms_old_keys=(config.kms_key,)))
    result = rotated.test_cli_runner().invoke(args=["kms", "rotate"])
    assert (
        result.exit_code == 0
        and "1 signing key(s), 0 variable(s), 0 configuration archive(s) and 0 piece(s) of runs" in result.output
    ), result.output
    with rotated.app_context():
        assert db.session.get(SigningKey, kid).kms_key_id == local_key_id(new_key)
        db.engine.dispose()
        drivers().close()
    only_new = create_app(dataclasses.replace(config, kms_key=new_key, kms_old_keys=()))
    with only_new.app_context():
        signing_keys._private_keys.clear()  # a fresh process: the key must come from the database
        again = signing_keys.sign_access_token({"sub": "dana", "aud": "statesman"})
        assert again.split(".")[0] == token.split(".")[0]  # same header: the same kid signs


def test_rotation_refuses_to_start_without_every_stored_key(config) -> None:
    """A version under a key this command lacks (the new key deployed elsewhere, not here) stops it before any work."""
    new_key = os.urandom(32)
    ahead = create_app(dataclasses.replace(config, kms_key=new_key, kms_old_keys=(config.kms_key,)))
    token = make_token(ahead)
    assert ahead.test_client().post("/state/acme/prod", data=state(1), headers=basic(token)).status_code == 200
    with ahead.app_context():
        db.engine.dispose()
        drivers().close()

    other_key = os.urandom(32)
    missing_new = create_app(dataclasses.replace(config, kms_key=other_key, kms_old_keys=(config.kms_key,)))
    result = missing_new.test_cli_runner().invoke(args=["kms", "rotate"])
    assert result.exit_code == 1
    assert local_key_id(new_key) in result.output and "every server" in result.output
    assert "to re-encrypt" not in result.output
    with missing_new.app_context():
        assert {v.kms_key_id for v in db.session.scalars(db.select(StateVersion))} == {local_key_id(new_key)}
        db.engine.dispose()
        drivers().close()


def test_rotation_refuses_to_start_without_a_current_key(config) -> None:
    unencrypted = create_app(dataclasses.replace(config, kms_backend="none", kms_key=None))
    result = unencrypted.test_cli_runner().invoke(args=["kms", "rotate"])
    assert result.exit_code == 1
    assert "no current key" in result.output
    with unencrypted.app_context():
        db.engine.dispose()
        drivers().close()


def test_rotation_reencrypts_what_runs_keep(config) -> None:
    """A run's variables, log pieces, saved plan and JSON plan move to the new key and stay readable without the
    old one."""
    from app.models import Run
    from app.repositories import runs
    from tests.repositories.test_runs import agent, finish_plan, queue, workspace

    old_app = create_app(dataclasses.replace(config, runs_enabled=True))
    with old_app.app_context():
        run = queue(workspace(), variables=(("region", '"eu"'),))
        job = runs.claim_job(agent())
        assert job is not None
        finish_plan(job)
        run_id = run.id
        db.engine.dispose()
        drivers().close()
    new_key = os.urandom(32)
    rotated = create_app(
        dataclasses.replace(config, runs_enabled=True, kms_key=new_key, kms_old_keys=(config.kms_key,))
    )
    result = rotated.test_cli_runner().invoke(args=["kms", "rotate"])
    assert result.exit_code == 0 and "and 4 piece(s) of runs" in result.output, result.output
    with rotated.app_context():
        db.engine.dispose()
        drivers().close()
    only_new = create_app(dataclasses.replace(config, runs_enabled=True, kms_key=new_key, kms_old_keys=()))
    with only_new.app_context():
        found = db.session.get(Run, run_id)
        assert runs.run_variables(found) == [("region", '"eu"')]
        assert runs.read_log(found, "plan", 0, 100).startswith(b"\x02Terraform will perform")
        assert runs.plan_json(found) is not None
        db.engine.dispose()
        drivers().close()
