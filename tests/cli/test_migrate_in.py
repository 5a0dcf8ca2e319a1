"""``flask import-from``: states laid out exactly as each replaced server stored them, imported and read back.

The Go HTTP backend: an fs directory (plain and AES-GCM states, ids with and without the basic-auth password), S3
objects at a bucket's root (moto), a PostgreSQL ``states`` table with its key in Vault KV, Transit ciphertexts
(the fake Vault). OpenTaco Statesman: its S3 layout with versions, a lock and strays, and its SQL tables.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from datetime import datetime
from pathlib import Path

import hvac
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask
from flask.testing import FlaskCliRunner

from app.drivers.sources.http_backend import parse_entries, state_id
from app.drivers.sources.opentaco import version_timestamp
from app.extensions import db
from app.models import AuditEvent
from app.repositories import orgs, workspaces
from app.repositories.state_versions import list_versions, read_version_bytes
from tests.drivers.kms_services import shared_fake_vault
from tests.drivers.storage_services import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, new_s3_bucket
from tests.factories import basic, make_token
from tests.fake_vault import ROOT_TOKEN
from tests.services import POSTGRES_URL, require_service

KEY = os.urandom(32)
PASSWORD = "some-random-secret"


def state(serial: int, lineage: str = "lin-a", value: str = "v") -> bytes:
    document = {
        "version": 4,
        "terraform_version": "1.5.7",
        "serial": serial,
        "lineage": lineage,
        "outputs": {"value": {"value": value, "type": "string"}},
        "resources": [],
    }
    return json.dumps(document, indent=2).encode() + b"\n"


def aes(plaintext: bytes, key: bytes = KEY) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, None)


def invoke(runner: FlaskCliRunner, *args: str, ok: bool = True) -> str:
    result = runner.invoke(args=list(args))
    if ok:
        assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def history(app: Flask, org: str, name: str) -> list[tuple[int, bytes, datetime]]:
    """(serial, plaintext, created_at) of each version, oldest first."""
    with app.app_context():
        found = orgs.get_org_by_name(org)
        workspace = workspaces.get_workspace(found, name) if found else None
        if workspace is None:
            return []
        versions, _ = list_versions(workspace)
        rows = [(v.serial, read_version_bytes(v), v.created_at) for v in reversed(versions)]
        db.session.remove()
        return rows


def org_names(app: Flask) -> list[str]:
    with app.app_context():
        return [org.name for org in orgs.list_orgs()]


# --- ids and names -------------------------------------------------------------------------------------------


def test_state_ids_follow_the_documented_vectors():
    assert state_id("project1", "example") == "beeaa72f907d525e0e34826f3201d96d8fa9a86870804a09da3814b085dd7b36"
    assert (
        state_id("project1", "example", "some-random-secret")
        == "d82238e1158b32f0b445c5da058608a8c1d83551f890b19b7e90d78cce1a808d"
    )


def test_entries_file_lines():
    entries = parse_entries("# comment\n\nproject1/example:pw:with:colons\nteam/app\n", default_password="shared")
    assert [(e.project, e.name, e.password) for e in entries] == [
        ("project1", "example", "pw:with:colons"),
        ("team", "app", "shared"),
    ]
    with pytest.raises(Exception, match="line 1"):
        parse_entries("no-slash\n")


def test_opentaco_version_names():
    assert version_timestamp("v-20240102T030405.123456Z-0a1b2c3d.tfstate") == datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert version_timestamp("v-2024-01-02-0a1b2c3d.tfstate") is None
    assert version_timestamp("terraform.tfstate") is None


# --- the Go HTTP backend ---------------------------------------------------------------------------------------


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def write_fs_backend(directory: Path) -> dict[str, bytes]:
    """project1/example with the password mixed in and AES-encrypted; project1/plain without password, stored plain
    (written before encryption was switched on); one file no entry names."""
    directory.mkdir()
    plaintexts = {"project1/example": state(7, value="example"), "project1/plain": state(3, value="plain")}
    (directory / f"{state_id('project1', 'example', PASSWORD)}.tfstate").write_bytes(
        aes(plaintexts["project1/example"])
    )
    (directory / f"{state_id('project1', 'plain')}.tfstate").write_bytes(plaintexts["project1/plain"])
    (directory / f"{'f' * 64}.tfstate").write_bytes(aes(state(1)))
    return plaintexts


def test_fs_directory_with_aes_dry_run_import_rerun_and_read_back(app, runner, tmp_path):
    plaintexts = write_fs_backend(tmp_path / "backend")
    entries = tmp_path / "entries.txt"
    entries.write_text(f"project1/example:{PASSWORD}\nproject1/plain\nproject1/missing\n")
    args = ("import-from", "http-backend", "--source", f"fs:{tmp_path / 'backend'}", "--entries", str(entries))
    key = ("--aes-key", base64.b64encode(KEY).decode())

    dry = invoke(runner, *args, *key, "--dry-run")
    assert "found: project1/example" in dry and "found: project1/plain" in dry
    assert f"not found: project1/missing (id {state_id('project1', 'missing')})" in dry
    assert f"unmatched: {'f' * 64} (no entry has this id)" in dry
    assert "would create organization project1" in dry
    assert "dry run: 2 workspace(s): would import 2 version(s)" in dry
    assert org_names(app) == []

    out = invoke(runner, *args, *key)
    assert "project1/example: imported 1 version(s), 0 already present" in out
    for name in ("example", "plain"):
        rows = history(app, "project1", name)
        assert [(serial, data) for serial, data, _ in rows] == [
            (json.loads(plaintexts[f"project1/{name}"])["serial"], plaintexts[f"project1/{name}"])
        ]
    again = invoke(runner, *args, *key)
    assert "2 workspace(s): imported 0 version(s), 2 already present" in again
    assert len(history(app, "project1", "example")) == 1

    secret = make_token(app, org="project1")
    response = app.test_client().get("/state/project1/example", headers=basic(secret))
    assert response.status_code == 200
    assert response.data == plaintexts["project1/example"]
    with app.app_context():
        imports = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "state.import")).all()
        assert len(imports) == 2


def test_wrong_aes_key_stops_the_workspace_and_exits_1(app, runner, tmp_path):
    write_fs_backend(tmp_path / "backend")
    entries = tmp_path / "entries.txt"
    entries.write_text(f"project1/example:{PASSWORD}\n")
    result = runner.invoke(
        args=[
            *("import-from", "http-backend", "--source", f"fs:{tmp_path / 'backend'}", "--entries", str(entries)),
            *("--aes-key", base64.b64encode(os.urandom(16)).decode()),
        ]
    )
    assert result.exit_code == 1, result.output
    assert "AES-GCM authentication failed" in result.output
    assert history(app, "project1", "example") == []


def test_s3_bucket_root_into_one_organization(app, make_app, tmp_path, request):
    endpoint, bucket, admin = new_s3_bucket(request)
    plaintext = state(4, value="s3")
    admin.put_object(Bucket=bucket, Key=f"{state_id('infra', 'network')}.tfstate", Body=plaintext)
    admin.put_object(Bucket=bucket, Key=f"nested/{state_id('infra', 'other')}.tfstate", Body=state(1))
    entries = tmp_path / "entries.txt"
    entries.write_text("infra/network\ninfra/other\n")
    application = make_app(
        s3_endpoint=endpoint,
        s3_region=S3_REGION,
        s3_path_style=True,
        s3_use_ssl=False,
        s3_access_key=S3_ACCESS_KEY,
        s3_secret_key=S3_SECRET_KEY,
    )
    runner = application.test_cli_runner()
    out = invoke(
        runner, "import-from", "http-backend", "--source", f"s3://{bucket}", "--entries", str(entries), "--org", "acme"
    )
    assert "found: infra/network" in out and "not found: infra/other" in out
    assert [(s, d) for s, d, _ in history(application, "acme", "network")] == [(4, plaintext)]
    assert org_names(application) == ["acme"]


@pytest.fixture
def scratch_postgres() -> str:
    require_service("postgres")
    name = f"statesman_src_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    yield sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_postgres_table_with_the_key_in_vault_kv(make_app, tmp_path, scratch_postgres, request):
    fake = shared_fake_vault(request)
    secret_path = f"http-backend-{uuid.uuid4().hex[:8]}"
    fake.write_secret("secret", secret_path, {"key": base64.b64encode(KEY).decode()})
    plaintext = state(12, value="pg")
    engine = sa.create_engine(scratch_postgres)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE states (state_id varchar(255) PRIMARY KEY, state_data bytea)"))
        connection.execute(
            sa.text("INSERT INTO states VALUES (:id, :data)"),
            [
                {"id": state_id("ops", "dns", PASSWORD), "data": aes(plaintext)},
                {"id": "0" * 64, "data": aes(state(1))},
            ],
        )
    engine.dispose()
    entries = tmp_path / "entries.txt"
    entries.write_text("ops/dns\n")
    application = make_app(vault_addr=fake.url, vault_token=ROOT_TOKEN)
    source = scratch_postgres.replace("postgresql+psycopg2://", "postgres://")
    out = invoke(
        application.test_cli_runner(),
        *("import-from", "http-backend", "--source", source, "--entries", str(entries)),
        *("--password", PASSWORD, "--vault-kv", f"secret/data/{secret_path}"),
    )
    assert "found: ops/dns" in out and f"unmatched: {'0' * 64}" in out
    assert [(s, d) for s, d, _ in history(application, "ops", "dns")] == [(12, plaintext)]


def test_vault_transit_ciphertexts(make_app, tmp_path, request):
    fake = shared_fake_vault(request)
    transit_key = f"http-backend-{uuid.uuid4().hex[:8]}"
    fake.create_transit_key("transit", transit_key)
    client = hvac.Client(url=fake.url, token=ROOT_TOKEN)
    plaintext = state(5, value="transit")
    sealed = client.secrets.transit.encrypt_data(transit_key, base64.b64encode(plaintext).decode())
    client.adapter.close()
    ciphertext = sealed["data"]["ciphertext"].encode()
    assert ciphertext.startswith(b"vault:v1:")
    backend = tmp_path / "backend"
    backend.mkdir()
    (backend / f"{state_id('project1', 'example', PASSWORD)}.tfstate").write_bytes(ciphertext)
    entries = tmp_path / "entries.txt"
    entries.write_text(f"project1/example:{PASSWORD}\n")
    application = make_app(vault_addr=fake.url, vault_token=ROOT_TOKEN)
    invoke(
        application.test_cli_runner(),
        *("import-from", "http-backend", "--source", f"fs:{backend}", "--entries", str(entries)),
        *("--vault-transit", transit_key),
    )
    assert [(s, d) for s, d, _ in history(application, "project1", "example")] == [(5, plaintext)]
    assert fake.count("POST", f"/v1/transit/decrypt/{transit_key}") >= 1


# --- OpenTaco Statesman --------------------------------------------------------------------------------------

ORG_UUID = "7d1c3a52-7f0e-4c5b-9a41-2f0c8d6e1b90"
UNIT_UUID = "0b6f8e2a-3c4d-4e5f-8a9b-1c2d3e4f5a6b"
UNKNOWN_UNIT = "9e8d7c6b-5a49-4838-a726-151413121110"


def opentaco_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE organizations (id varchar(36) PRIMARY KEY, name text)"))
        connection.execute(sa.text("CREATE TABLE units (id varchar(36) PRIMARY KEY, org_id varchar(36), name text)"))
        connection.execute(sa.text("INSERT INTO organizations VALUES (:id, 'platform')"), {"id": ORG_UUID})
        connection.execute(
            sa.text("INSERT INTO units VALUES (:id, :org, 'network')"), {"id": UNIT_UUID, "org": ORG_UUID}
        )
    engine.dispose()
    return url


def test_opentaco_bucket_with_versions(app, make_app, tmp_path, request):
    endpoint, bucket, admin = new_s3_bucket(request)
    unit = f"taco/{ORG_UUID}/{UNIT_UUID}"
    # Stored out of order; the third version goes back in serial (the old server accepted any write).
    versions = {
        "v-20240301T101500.000002Z-cccccccc.tfstate": state(5, value="three"),
        "v-20240101T080000.000001Z-aaaaaaaa.tfstate": state(1, value="one"),
        "v-20240201T090000.500000Z-bbbbbbbb.tfstate": state(6, value="two"),
    }
    for name, data in versions.items():
        admin.put_object(Bucket=bucket, Key=f"{unit}/versions/{name}", Body=data)
    current = state(7, value="current")
    admin.put_object(Bucket=bucket, Key=f"{unit}/terraform.tfstate", Body=current)
    lock = {"id": "l1", "who": "ci", "version": "1.5.7", "created": "2024-03-01T10:15:00Z"}
    admin.put_object(Bucket=bucket, Key=f"{unit}/terraform.tfstate.lock", Body=json.dumps(lock).encode())
    admin.put_object(Bucket=bucket, Key=f"taco/{ORG_UUID}/{UNKNOWN_UNIT}/terraform.tfstate", Body=state(1))
    admin.put_object(Bucket=bucket, Key="taco/README", Body=b"not a state")
    application = make_app(
        s3_endpoint=endpoint,
        s3_region=S3_REGION,
        s3_path_style=True,
        s3_use_ssl=False,
        s3_access_key=S3_ACCESS_KEY,
        s3_secret_key=S3_SECRET_KEY,
    )
    runner = application.test_cli_runner()
    database = opentaco_database(tmp_path / "opentaco.db")
    args = ("import-from", "opentaco", "--source", f"s3://{bucket}/taco", "--database", database)

    dry = invoke(runner, *args, "--dry-run")
    assert f"found: {ORG_UUID}/{UNIT_UUID} = platform/network" in dry
    assert f"unmatched: {ORG_UUID}/{UNKNOWN_UNIT} (1 object(s); no unit with this uuid)" in dry
    assert "unmatched: README (not part of the layout)" in dry
    assert "platform/network: would import 4 version(s)" in dry
    assert org_names(application) == []

    out = invoke(runner, *args, "--org-map", f"{ORG_UUID}=platform-team")
    assert "platform-team/network: imported 4 version(s), 0 already present, 1 past the serial/lineage guard" in out
    rows = history(application, "platform-team", "network")
    assert [data for _, data, _ in rows] == [
        versions["v-20240101T080000.000001Z-aaaaaaaa.tfstate"],
        versions["v-20240201T090000.500000Z-bbbbbbbb.tfstate"],
        versions["v-20240301T101500.000002Z-cccccccc.tfstate"],
        current,
    ]
    assert [created for _, _, created in rows[:3]] == [
        datetime(2024, 1, 1, 8, 0, 0, 1),
        datetime(2024, 2, 1, 9, 0, 0, 500000),
        datetime(2024, 3, 1, 10, 15, 0, 2),
    ]
    with application.app_context():
        forced = db.session.scalars(
            db.select(AuditEvent).where(AuditEvent.action == "state.import", AuditEvent.outcome == "forced")
        ).all()
        assert len(forced) == 1

    again = invoke(runner, *args, "--org-map", f"{ORG_UUID}=platform-team")
    assert "platform-team/network: imported 0 version(s), 4 already present" in again
    assert len(history(application, "platform-team", "network")) == 4

    secret = make_token(application, org="platform-team")
    response = application.test_client().get("/state/platform-team/network", headers=basic(secret))
    assert response.status_code == 200 and response.data == current
    assert hashlib.sha256(response.data).hexdigest() == hashlib.sha256(current).hexdigest()


def test_opentaco_import_never_overwrites_a_different_state(app, runner, tmp_path):
    source = tmp_path / "taco"
    (source / ORG_UUID / UNIT_UUID).mkdir(parents=True)
    (source / ORG_UUID / UNIT_UUID / "terraform.tfstate").write_bytes(state(3, lineage="theirs"))
    secret = make_token(app, org="platform")
    client = app.test_client()
    assert (
        client.post("/state/platform/network", data=state(9, lineage="ours"), headers=basic(secret)).status_code == 200
    )
    database = opentaco_database(tmp_path / "opentaco.db")
    result = runner.invoke(args=["import-from", "opentaco", "--source", f"fs:{source}", "--database", database])
    assert result.exit_code == 1
    assert "refused: lineage" in result.output
    assert [json.loads(d)["lineage"] for _, d, _ in history(app, "platform", "network")] == ["ours"]
