"""``flask agents``: pools and agent tokens from the command line, and the same tokens through the TFE API."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.factories import bearer, make_token
from tests.tfc_api.conftest import Api

SECRET = re.compile(r"^stm_[A-Za-z0-9]{40}$")


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def invoke(runner: FlaskCliRunner, *args: str, ok: bool = True):
    result = runner.invoke(args=list(args))
    if ok:
        assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def test_pools_and_agent_tokens_from_the_command_line(app: Flask, runner: FlaskCliRunner) -> None:
    admin = Api(app.test_client(), make_token(app))  # creates acme with admin alice
    created = invoke(runner, "agents", "pools", "create", "builders", "--org", "acme")
    assert "created agent pool builders (apool-" in created.output
    assert invoke(runner, "agents", "pools", "create", "builders", "--org", "acme", ok=False).exit_code == 1
    assert invoke(runner, "agents", "pools", "create", "bad name", "--org", "acme", ok=False).exit_code == 1
    pools = invoke(runner, "agents", "pools", "list", "--org", "acme").output.strip().splitlines()
    assert len(pools) == 1 and pools[0].split("\t")[1] == "builders"
    pool_id = pools[0].split("\t")[0]

    made = invoke(runner, "agents", "token", "create", "--org", "acme", "--pool", "builders", "--description", "host 1")
    secret = made.stdout.strip()
    assert SECRET.match(secret), made.output
    match = re.search(r"created agent token (at-\w+) for agent pool builders", made.stderr)
    assert match is not None, made.stderr
    token_id = match[1]
    unpooled = invoke(runner, "agents", "token", "create", "--org", "acme").stdout.strip()
    missing_pool = invoke(runner, "agents", "token", "create", "--org", "acme", "--pool", "nope", ok=False)
    assert missing_pool.exit_code == 1 and "not found" in missing_pool.output

    listing = invoke(runner, "agents", "token", "list", "--org", "acme").output
    lines = listing.strip().splitlines()
    assert len(lines) == 2 and secret not in listing and unpooled not in listing
    mine = next(line.split("\t") for line in lines if line.startswith(token_id))
    assert mine[1] == "pool=builders" and mine[-1] == "description=host 1" and "last_used=never" in mine
    assert any("\tpool=*\t" in line for line in lines)
    all_tokens = invoke(runner, "tokens", "list", "--org", "acme").output
    agent_line = next(line for line in all_tokens.splitlines() if line.startswith(token_id))
    assert "\tkind=agent\t" in agent_line and f"\tpool={pool_id}\t" in agent_line and "\tworkspace=*\t" in agent_line
    assert "\tkind=user\t" in all_tokens

    # The API sees the CLI's token, and the CLI's revocation reaches the API.
    listed = admin.get(f"agent-pools/{pool_id}/authentication-tokens").json["data"]
    assert [item["id"] for item in listed] == [token_id]
    assert admin.get(f"authentication-tokens/{token_id}").status_code == 200
    client = app.test_client()
    assert client.get("/api/v2/account/details", headers=bearer(secret)).status_code == 403
    assert invoke(runner, "agents", "token", "revoke", token_id).output.startswith("revoked agent token")
    assert client.get("/api/v2/account/details", headers=bearer(secret)).status_code == 401
    assert admin.get(f"authentication-tokens/{token_id}").status_code == 404
    assert len(invoke(runner, "agents", "token", "list", "--org", "acme").output.strip().splitlines()) == 1

    user_token = invoke(runner, "tokens", "list", "--org", "acme").output.splitlines()[-1].split("\t")[0]
    refused = invoke(runner, "agents", "token", "revoke", user_token, ok=False)
    assert refused.exit_code == 1 and "not found" in refused.output


def test_service_tokens_from_the_cli_are_service_kind(app: Flask, runner: FlaskCliRunner) -> None:
    invoke(runner, "orgs", "create", "acme")
    invoke(runner, "tokens", "create", "--org", "acme", "--read-only")
    listing = invoke(runner, "tokens", "list", "--org", "acme").output
    assert "\t(organization)\tread-only\tactive\tworkspace=*\tkind=service\t" in listing
