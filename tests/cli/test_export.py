"""``flask export`` / ``flask import``: a whole server moves between backend combinations with the same state bytes,
history, tokens, signing keys and audit log; import is idempotent, resumable, and refuses damaged exports."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.drivers.kms.local import local_key_id
from app.extensions import db, drivers
from app.models import AuditEvent, StateVersion, Workspace, WorkspaceVariable
from app.repositories import signing_keys, variables
from app.repositories.backup import Importer
from app.repositories.state_versions import COPIES, open_copy, read_version_bytes
from config import Config
from tests.conftest import base_config, close_app, empty_tables, metadata_backends
from tests.drivers.storage_services import new_s3_bucket, s3_config
from tests.factories import basic, lock_info, make_token
from tests.tfc_api.conftest import Api

TARGETS = [
    pytest.param(("s3", "postgres"), id="s3+postgres"),
    pytest.param(("memory", "mysql"), id="memory+mariadb"),
    pytest.param(("fs", "sqlite"), id="fs+sqlite"),
]


def state(serial: int, lineage: str = "export", size: int = 0) -> bytes:
    document = {
        "version": 4,
        "terraform_version": "1.5.0",
        "serial": serial,
        "lineage": lineage,
        "outputs": {"n": {"value": serial, "type": "number"}, "pi": {"value": 3.14159, "type": "number"}},
        "resources": [{"mode": "managed", "type": "null_resource", "name": "r", "instances": [{"attributes": {}}]}],
        "padding": "x" * size,
    }
    return json.dumps(document, indent=2).encode() + b"\n"


@pytest.fixture
def source(tmp_path: Path, sqlite_template: Path) -> Iterator[Flask]:
    """The server being exported: fs storage and SQLite."""
    database = tmp_path / "source.db"
    shutil.copyfile(sqlite_template, database)
    application = create_app(base_config(tmp_path / "source", f"sqlite:///{database}"))
    yield application
    close_app(application)


def target_config(
    kind: tuple[str, str], request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Config:
    storage, database = kind
    if database not in metadata_backends(database):
        pytest.skip(f"STATESMAN_TEST_DATABASES leaves out {database}")
    if database == "sqlite":
        path = tmp_path / "target.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue(f"{database}_database")
        empty_tables(url)
    config = dataclasses.replace(base_config(tmp_path / "target", url), kms_key=os.urandom(32), storage_backend=storage)
    if storage == "s3":
        endpoint, bucket, _ = new_s3_bucket(request)
        s3 = s3_config(endpoint, bucket)
        config = dataclasses.replace(
            config, **{f.name: getattr(s3, f.name) for f in dataclasses.fields(Config) if f.name.startswith("s3_")}
        )
    return config


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Flask]:
    """The server the export is imported into: another storage, database and KMS key."""
    application = create_app(target_config(request.param, request, tmp_path, sqlite_template))
    yield application
    close_app(application)


@dataclasses.dataclass
class Populated:
    token: str
    revoked: str
    kid: str
    json_version: str


def populate(app: Flask) -> Populated:
    """States with history in two workspaces, JSON copies, a lock, tags, tokens, a signing key, audit events."""
    token = make_token(app)
    revoked = make_token(app, subject="bob", role="default")
    client = app.test_client()
    for serial in (1, 2, 3):
        assert (
            client.post("/state/acme/prod", data=state(serial, size=2000 * serial), headers=basic(token)).status_code
            == 200
        )
    for serial in (1, 2):
        assert client.post("/state/acme/staging", data=state(serial, "other"), headers=basic(token)).status_code == 200
    api = Api(client, token)
    workspace = api.create_workspace("tfc")
    api.lock(workspace["id"])
    body, copy = state(1, "tfc"), json.dumps({"format_version": "1.0", "values": {}}).encode()
    attributes = {
        "serial": 1,
        "md5": hashlib.md5(body).hexdigest(),
        "lineage": "tfc",
        "state": base64.b64encode(body).decode(),
        "json-state": base64.b64encode(copy).decode(),
        "json-state-outputs": base64.b64encode(b'{"n": {"sensitive": false, "value": 1, "type": "number"}}').decode(),
    }
    created = api.post(f"workspaces/{workspace['id']}/state-versions", {"data": {"attributes": attributes}})
    assert created.status_code == 201, created.json
    assert (
        client.open("/state/acme/staging", method="LOCK", data=lock_info("held"), headers=basic(token)).status_code
        == 200
    )
    with app.app_context():
        from app.repositories import tokens

        bob_token = tokens.verify_token(revoked)
        assert bob_token is not None
        tokens.revoke_token(bob_token.id, "test")
        from app.repositories import tags

        found = db.session.get(Workspace, workspace["id"])
        tags.replace_tags(found, {"team": "infra", "prod": ""})
        db.session.commit()
        signing_keys.sign_access_token({"sub": "alice", "aud": "statesman"})
        kid = signing_keys.current_signing_key().kid
    for key, value, sensitive in (("region", "eu-west-1", False), ("db_password", "s3cret", True)):
        body = {"data": {"type": "vars", "attributes": {"key": key, "value": value, "category": "terraform"}}}
        body["data"]["attributes"]["sensitive"] = sensitive
        made_var = Api(client, token).post(f"workspaces/{workspace['id']}/vars", body)
        assert made_var.status_code == 201, made_var.json
    return Populated(token, revoked, kid, created.json["data"]["id"])


def snapshot(app: Flask) -> dict[str, Any]:
    """Everything that must survive the move, read through the repositories of ``app``."""
    with app.app_context():
        workspaces = {
            w.id: (
                w.org_id,
                w.name,
                w.current_version_id,
                w.version_counter,
                w.created_at,
                sorted((t.key, t.value) for t in w.tags),
            )
            for w in db.session.scalars(db.select(Workspace))
        }
        versions = []
        for v in db.session.scalars(db.select(StateVersion).order_by(StateVersion.workspace_id, StateVersion.number)):
            copies = {c.kind: b"".join(open_copy(v, c)) for c in COPIES if getattr(v, c.key)}
            versions.append(
                (
                    v.id,
                    v.workspace_id,
                    v.number,
                    v.serial,
                    v.lineage,
                    v.md5,
                    v.sha256,
                    v.size,
                    v.outputs,
                    v.created_at,
                    v.created_by,
                    read_version_bytes(v),
                    copies,
                )
            )
        events = [
            (e.id, e.at, e.actor, e.action, e.outcome, e.org_id, e.workspace_id, e.detail)
            for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))
        ]
        keys = [(k.kid, k.slot, k.public_jwk) for k in signing_keys.published_keys()]
        values = sorted(
            (v.id, v.workspace_id, v.key, v.category, v.sensitive, v.version, variables.revealed_value(v))
            for v in db.session.scalars(db.select(WorkspaceVariable))
        )
        db.session.rollback()
    versions.sort(key=lambda v: (v[1], v[2]))  # in Python: MySQL's collation orders ids differently
    return {"workspaces": workspaces, "versions": versions, "events": events, "signing_keys": keys, "vars": values}


def run(app: Flask, *args: str, ok: bool = True) -> Any:
    result = app.test_cli_runner().invoke(args=list(args))
    if ok:
        assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def test_round_trip_keeps_states_history_tokens_and_audit(source: Flask, target: Flask, tmp_path: Path) -> None:
    made = populate(source)
    before = snapshot(source)
    out = tmp_path / "backup"
    result = run(source, "export", "--output", str(out))
    assert "state versions" in result.output  # the progress bar's label
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["state_versions"] == 6
    assert all(
        hashlib.sha256((out / "objects" / name).read_bytes()).hexdigest() == entry["sha256"]
        for name, entry in manifest["objects"].items()
    )
    assert not (out / "locks.jsonl").exists()

    first = run(target, "import", str(out))
    assert "state_versions: 6 imported, 0 already present" in first.output
    after = snapshot(target)
    assert after == before  # ids, numbers, serials, lineages, bytes, copies, pointers, tags, audit events, keys

    again = run(target, "import", str(out))  # idempotent: everything is found, checked and skipped
    assert "state_versions: 0 imported, 6 already present" in again.output
    assert f"audit_events: 0 imported, {len(before['events'])} already present" in again.output
    assert snapshot(target) == before

    client = target.test_client()
    reply = client.get("/state/acme/prod", headers=basic(made.token))  # the token hash came along
    assert reply.status_code == 200 and reply.data == state(3, size=6000)
    assert client.get("/state/acme/prod", headers=basic(made.revoked)).status_code == 401  # still revoked
    # locks stay behind: the locked workspace is free on the target
    assert (
        client.open("/state/acme/staging", method="LOCK", data=lock_info("new"), headers=basic(made.token)).status_code
        == 200
    )
    # a new write continues the history
    assert client.post("/state/acme/prod", data=state(4), headers=basic(made.token)).status_code == 200
    with target.app_context():
        key_id = drivers().kms.key_id
        assert key_id == local_key_id(target.extensions["statesman"].config.kms_key)
        versions = list(db.session.scalars(db.select(StateVersion)))
        assert {v.kms_key_id for v in versions} == {key_id}
        assert {v.json_state_kms_key_id for v in versions if v.json_state_key} == {key_id}
        signing_keys._private_keys.clear()  # as in a fresh process: the key is unsealed with the target's KMS key
        signed = signing_keys.sign_access_token({"sub": "alice", "aud": "statesman"})
        assert json.loads(base64.urlsafe_b64decode(signed.split(".")[0] + "==")).get("kid") == made.kid
        events = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent))
        assert events > len(before["events"])  # new events get fresh ids after the imported ones


def test_an_interrupted_import_completes_on_the_next_run(source: Flask, target: Flask, tmp_path: Path) -> None:
    populate(source)
    before = snapshot(source)
    out = tmp_path / "backup"
    run(source, "export", "-o", str(out))
    with target.app_context():
        importer = Importer(out)
        importer.import_tables()
        for row in importer.version_rows()[:3]:
            importer.import_version(row)
        db.session.rollback()
        # no pointer yet: nothing points at a version that is not there
        assert {w.current_version_id for w in db.session.scalars(db.select(Workspace))} == {None}
        db.session.rollback()
    result = run(target, "import", str(out))
    assert "state_versions: 3 imported, 3 already present" in result.output
    assert snapshot(target) == before


@pytest.mark.parametrize("target", [TARGETS[2]], indirect=True)
def test_conflicting_rows_are_reported_and_left_alone(source: Flask, target: Flask, tmp_path: Path) -> None:
    populate(source)
    out = tmp_path / "backup"
    run(source, "export", "-o", str(out))
    run(target, "import", str(out))
    with target.app_context():
        from app.models import Organization

        org = db.session.scalar(db.select(Organization))
        org.display_name = "Changed on the target"
        db.session.commit()
    result = run(target, "import", str(out), ok=False)
    assert result.exit_code == 1
    assert "conflict: organizations org-" in result.output and "display_name" in result.output
    with target.app_context():
        assert db.session.scalar(db.select(Organization)).display_name == "Changed on the target"


@pytest.mark.parametrize("target", [TARGETS[2]], indirect=True)
def test_a_damaged_export_is_refused(source: Flask, target: Flask, tmp_path: Path) -> None:
    populate(source)
    out = tmp_path / "backup"
    run(source, "export", "-o", str(out))
    name = sorted(p.name for p in (out / "objects").glob("*.tfstate"))[0]
    damaged = out / "objects" / name
    damaged.write_bytes(damaged.read_bytes().replace(b'"serial"', b'"serail"'))
    result = run(target, "import", str(out), ok=False)
    assert result.exit_code == 1 and "does not match its SHA-256" in result.output
    with target.app_context():
        stored = {item.key for item in drivers().storage.list_keys()}
        assert not any(name.split(".")[0] in key for key in stored)  # the refused object was not kept

    (out / "manifest.json").unlink()
    incomplete = run(target, "import", str(out), ok=False)
    assert "no manifest.json" in incomplete.output


def test_export_refuses_a_non_empty_directory(source: Flask, tmp_path: Path) -> None:
    out = tmp_path / "backup"
    out.mkdir()
    (out / "something").write_text("x")
    result = run(source, "export", "-o", str(out), ok=False)
    assert result.exit_code == 1 and "not empty" in result.output
