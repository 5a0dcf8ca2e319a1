"""The admin commands, through ``app.test_cli_runner()``: organizations, users, tokens, workspaces, versions."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from app.core.clock import utcnow
from app.extensions import db
from app.models import ApiToken, AuditEvent
from app.repositories import orgs, tokens, workspaces
from app.repositories.state_versions import list_versions
from tests.factories import basic, lock_info, make_token

PATH = "/state/acme/prod"
SECRET = re.compile(r"^stm_[A-Za-z0-9]{40}$")


def state(serial: int, value: str, lineage: str = "cli") -> bytes:
    return (
        json.dumps(
            {
                "version": 4,
                "terraform_version": "1.5.0",
                "serial": serial,
                "lineage": lineage,
                "outputs": {"greeting": {"value": value, "type": "string"}},
                "resources": [],
            },
            indent=2,
        ).encode()
        + b"\n"
    )


LOCK = lock_info("held-1")


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def invoke(runner: FlaskCliRunner, *args: str, ok: bool = True):
    result = runner.invoke(args=list(args))
    if ok:
        assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def setup_member(runner: FlaskCliRunner, subject: str = "alice", org: str = "acme") -> None:
    if org not in invoke(runner, "orgs", "list").output:
        invoke(runner, "orgs", "create", org)
    invoke(runner, "users", "create", subject, "--org", org, "--email", f"{subject}@example.com")


def new_token(runner: FlaskCliRunner, *options: str) -> str:
    result = invoke(runner, "tokens", "create", "--org", "acme", "--user", "alice", *options)
    secret = result.stdout.strip()
    assert SECRET.match(secret), result.stdout
    return secret


def workspace_versions(app: Flask, name: str = "prod") -> list:
    with app.app_context():
        found = workspaces.get_workspace(orgs.require_org("acme"), name)
        assert found is not None
        versions, _ = list_versions(found)
        db.session.expunge_all()
        return versions


# --- organizations and users ---------------------------------------------------------------------------------


def test_orgs_create_and_list(app, runner):
    result = invoke(runner, "orgs", "create", "acme", "--display-name", "Acme Corp")
    assert "created organization acme" in result.output
    invoke(runner, "orgs", "create", "globex")
    listing = invoke(runner, "orgs", "list").output.splitlines()
    rows = [line.split("\t") for line in listing]
    assert [row[1] for row in rows] == ["acme", "globex"]
    assert rows[0][2] == "Acme Corp"
    with app.app_context():
        assert orgs.require_org("acme").id == rows[0][0]


def test_orgs_create_refuses_duplicates_and_bad_names(runner):
    invoke(runner, "orgs", "create", "acme")
    duplicate = invoke(runner, "orgs", "create", "acme", ok=False)
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.output
    assert "Traceback" not in duplicate.output
    bad = invoke(runner, "orgs", "create", "-bad name", ok=False)
    assert bad.exit_code != 0
    assert invoke(runner, "orgs", "list").output.count("\tacme\t") == 1


def test_users_create(app, runner):
    invoke(runner, "orgs", "create", "acme")
    result = invoke(runner, "users", "create", "alice", "--org", "acme", "--email", "alice@example.com")
    assert "alice" in result.output and "acme" in result.output
    # Idempotent.
    invoke(runner, "users", "create", "alice", "--org", "acme")
    with app.app_context():
        org = orgs.require_org("acme")
        assert [u.subject for u in orgs.list_members(org)] == ["alice"]
        assert orgs.list_members(org)[0].email == "alice@example.com"


def test_users_create_in_unknown_org_fails_cleanly(runner):
    result = invoke(runner, "users", "create", "alice", "--org", "nosuch", ok=False)
    assert result.exit_code == 1
    assert "nosuch" in result.output
    assert "Traceback" not in result.output


# --- tokens --------------------------------------------------------------------------------------------------


def test_tokens_create_prints_the_secret_once_on_stdout(app, client, runner):
    setup_member(runner)
    result = invoke(runner, "tokens", "create", "--org", "acme", "--user", "alice", "--description", "ci")
    secret = result.stdout.strip()
    assert SECRET.match(secret)
    assert result.stdout == secret + "\n"
    assert result.output.count(secret) == 1
    assert secret not in result.stderr
    assert "shown only once" in result.stderr
    with app.app_context():
        row = db.session.scalar(db.select(ApiToken).where(ApiToken.token_hash == tokens.hash_token(secret)))
        assert row is not None
        assert row.scope == "full"
        assert row.expires_at is None
        assert row.description == "ci"
    assert client.post(PATH, data=state(1, "hi"), headers=basic(secret)).status_code == 200
    assert client.get(PATH, headers=basic(secret)).data == state(1, "hi")


def test_tokens_create_read_only(app, client, runner):
    setup_member(runner)
    full = new_token(runner)
    read_only = new_token(runner, "--read-only")
    assert client.post(PATH, data=state(1, "hi"), headers=basic(full)).status_code == 200
    assert client.get(PATH, headers=basic(read_only)).data == state(1, "hi")
    assert client.post(PATH, data=state(2, "no"), headers=basic(read_only)).status_code == 403
    assert client.open(PATH, method="LOCK", data=LOCK, headers=basic(read_only)).status_code == 403


def test_tokens_create_for_the_organization(client, runner):
    invoke(runner, "orgs", "create", "acme")
    secret = invoke(runner, "tokens", "create", "--org", "acme").stdout.strip()
    assert SECRET.match(secret)
    assert client.post(PATH, data=state(1, "hi"), headers=basic(secret)).status_code == 200


def test_tokens_create_with_expiry(app, runner):
    setup_member(runner)
    before = utcnow()
    secret = new_token(runner, "--expires-in", "30d")
    with app.app_context():
        row = db.session.scalar(db.select(ApiToken).where(ApiToken.token_hash == tokens.hash_token(secret)))
        assert row is not None and row.expires_at is not None
        assert before + timedelta(days=30) - timedelta(seconds=5) <= row.expires_at
        assert row.expires_at <= utcnow() + timedelta(days=30) + timedelta(seconds=5)


@pytest.mark.parametrize("value", ["forever", "0", "-1d", "30x", "1.5h"])
def test_tokens_create_with_bad_expiry_fails_cleanly(app, runner, value):
    setup_member(runner)
    result = invoke(runner, "tokens", "create", "--org", "acme", "--user", "alice", f"--expires-in={value}", ok=False)
    assert result.exit_code == 1
    assert "--expires-in" in result.output
    assert "Traceback" not in result.output
    assert not re.search(r"stm_[A-Za-z0-9]{40}", result.output)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ApiToken)) == 0


def test_tokens_create_for_a_non_member_fails(app, runner):
    invoke(runner, "orgs", "create", "acme")
    result = invoke(runner, "tokens", "create", "--org", "acme", "--user", "mallory", ok=False)
    assert result.exit_code == 1
    assert "mallory" in result.output
    assert not re.search(r"stm_[A-Za-z0-9]{40}", result.output)


def test_tokens_list_never_shows_secrets(app, runner):
    setup_member(runner)
    secrets = [new_token(runner), new_token(runner, "--read-only"), new_token(runner, "--expires-in", "12h")]
    result = invoke(runner, "tokens", "list", "--org", "acme")
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    for secret in secrets:
        assert secret not in result.output
        assert secret.removeprefix("stm_") not in result.output
        assert tokens.hash_token(secret) not in result.output
    with app.app_context():
        ids = set(db.session.scalars(db.select(ApiToken.id)))
    assert {line.split("\t")[0] for line in lines} == ids
    assert all("\talice\t" in line and "\tactive\t" in line for line in lines)
    assert sum("\tread-only\t" in line for line in lines) == 1


def test_tokens_revoke(app, client, runner):
    setup_member(runner)
    secret = new_token(runner)
    assert client.post(PATH, data=state(1, "hi"), headers=basic(secret)).status_code == 200
    with app.app_context():
        token_id = db.session.scalar(db.select(ApiToken.id).where(ApiToken.token_hash == tokens.hash_token(secret)))
    result = invoke(runner, "tokens", "revoke", token_id)
    assert token_id in result.output
    assert client.get(PATH, headers=basic(secret)).status_code == 401
    listing = invoke(runner, "tokens", "list", "--org", "acme").output
    assert "\trevoked\t" in listing
    with app.app_context():
        revocations = list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "token.revoke")))
        assert len(revocations) == 1
        assert revocations[0].actor.startswith("cli:")
    unknown = invoke(runner, "tokens", "revoke", "at-doesnotexist", ok=False)
    assert unknown.exit_code == 1
    assert "not found" in unknown.output


# --- workspaces and versions -----------------------------------------------------------------------------------


@pytest.fixture
def three_versions(app, client, runner) -> tuple[str, list[bytes]]:
    """acme/prod with serials 1..3 written over the http backend; returns a token and the bodies."""
    token = make_token(app)
    bodies = [state(serial, f"hello-{serial}") for serial in (1, 2, 3)]
    for body in bodies:
        assert client.post(PATH, data=body, headers=basic(token)).status_code == 200
    return token, bodies


def test_workspaces_list(app, client, runner, three_versions):
    token, _ = three_versions
    assert (
        client.post("/state/acme/staging", data=state(7, "s", lineage="stg"), headers=basic(token)).status_code == 200
    )
    assert client.open("/state/acme/staging", method="LOCK", data=LOCK, headers=basic(token)).status_code == 200
    lines = invoke(runner, "workspaces", "list", "--org", "acme").output.strip().splitlines()
    rows = {line.split("\t")[1]: line.split("\t") for line in lines}
    assert set(rows) == {"prod", "staging"}
    assert rows["prod"][2:] == ["serial=3", "locked_by=-"]
    assert rows["staging"][2:] == ["serial=7", "locked_by=held-1"]
    unknown = invoke(runner, "workspaces", "list", "--org", "nosuch", ok=False)
    assert unknown.exit_code == 1


def test_versions_list(app, runner, three_versions):
    versions = workspace_versions(app)
    lines = invoke(runner, "versions", "list", "--org", "acme", "--workspace", "prod").output.strip().splitlines()
    assert len(lines) == 3
    assert [re.search(r"serial=(\d+)", line).group(1) for line in lines] == ["3", "2", "1"]  # type: ignore[union-attr]
    assert lines[0].startswith("* ")
    assert all(line.startswith("  ") for line in lines[1:])
    assert [line[2:].split("\t")[0] for line in lines] == [v.id for v in versions]


def test_versions_download_exact_bytes(app, runner, three_versions):
    _, bodies = three_versions
    current = invoke(runner, "versions", "download", "--org", "acme", "--workspace", "prod")
    assert current.stdout_bytes == bodies[2]
    oldest = workspace_versions(app)[-1]
    first = invoke(runner, "versions", "download", "--org", "acme", "--workspace", "prod", "--version", oldest.id)
    assert first.stdout_bytes == bodies[0]


def test_versions_download_to_a_file(app, runner, three_versions, tmp_path):
    _, bodies = three_versions
    target = tmp_path / "out.tfstate"
    invoke(runner, "versions", "download", "--org", "acme", "--workspace", "prod", "-o", str(target))
    assert target.read_bytes() == bodies[2]


def test_versions_download_unknown_version_fails(runner, three_versions):
    result = invoke(
        runner, "versions", "download", "--org", "acme", "--workspace", "prod", "--version", "sv-nope", ok=False
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_workspaces_rollback(app, client, runner, three_versions):
    token, _ = three_versions
    oldest = workspace_versions(app)[-1]
    result = invoke(runner, "workspaces", "rollback", "--org", "acme", "--workspace", "prod", "--version", oldest.id)
    assert "serial 4" in result.output
    versions = workspace_versions(app)
    assert [v.serial for v in versions] == [4, 3, 2, 1]
    assert versions[0].lineage == "cli"
    response = client.get(PATH, headers=basic(token))
    assert response.status_code == 200
    document = json.loads(response.data)
    assert document["serial"] == 4
    assert document["lineage"] == "cli"
    assert document["outputs"] == {"greeting": {"value": "hello-1", "type": "string"}}
    # Terraform can continue from the rolled-back state with the next serial.
    assert client.post(PATH, data=state(5, "after"), headers=basic(token)).status_code == 200
    with app.app_context():
        assert (
            db.session.scalar(
                db.select(db.func.count()).select_from(AuditEvent).where(AuditEvent.action == "state.rollback")
            )
            == 1
        )


def test_workspaces_rollback_unknown_version_fails(app, runner, three_versions):
    result = invoke(
        runner, "workspaces", "rollback", "--org", "acme", "--workspace", "prod", "--version", "sv-nope", ok=False
    )
    assert result.exit_code == 1
    assert "sv-nope" in result.output
    assert [v.serial for v in workspace_versions(app)] == [3, 2, 1]


def test_workspaces_force_unlock(app, client, runner, three_versions):
    token, _ = three_versions
    assert client.open(PATH, method="LOCK", data=LOCK, headers=basic(token)).status_code == 200
    result = invoke(runner, "workspaces", "force-unlock", "--org", "acme", "--workspace", "prod")
    assert "held-1" in result.output
    other = LOCK.replace(b"held-1", b"held-2")
    assert client.open(PATH, method="LOCK", data=other, headers=basic(token)).status_code == 200
    with app.app_context():
        forced = list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "force_unlock")))
        assert len(forced) == 1
        assert forced[0].actor.startswith("cli:")
    invoke(runner, "workspaces", "force-unlock", "--org", "acme", "--workspace", "prod")
    again = invoke(runner, "workspaces", "force-unlock", "--org", "acme", "--workspace", "prod")
    assert "not locked" in again.output
    missing = invoke(runner, "workspaces", "force-unlock", "--org", "acme", "--workspace", "nope", ok=False)
    assert missing.exit_code == 1
