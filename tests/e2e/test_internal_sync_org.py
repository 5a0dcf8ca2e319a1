"""``scripts/sync-org.sh`` and ``make sync-org`` against a real server process: idempotent, and loud on failure."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.live_server import REPO_ROOT, LiveServer, start_server

pytestmark = pytest.mark.e2e
SECRET = "e2e-webhook-secret"


@pytest.fixture
def internal_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "server", workers=2, extra_env={"OPENTACO_ENABLE_INTERNAL_ENDPOINTS": SECRET})
    yield server
    server.stop()


def sync(server: LiveServer, *command: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORG_", "USER_", "OPENTACO_", "STATESMAN_"))}
    env.update(
        {
            "STATESMAN_URL": server.url,
            "OPENTACO_ENABLE_INTERNAL_ENDPOINTS": SECRET,
            "ORG_ID": "org_01WORKOS",
            "ORG_NAME": "Personal",
            "ORG_DISPLAY": "Personal",
            "USER_ID": "user_01ALICE",
            "USER_EMAIL": "alice@example.com",
            **overrides,
        }
    )
    return subprocess.run(
        list(command) or ["scripts/sync-org.sh"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_sync_org_twice_then_the_user_is_admin(internal_server: LiveServer) -> None:
    first = sync(internal_server)
    assert first.returncode == 0, first.stderr
    assert 'organization Personal (org_01WORKOS, "Personal"): created' in first.stdout
    # The sync already made the creator a member and admin of the new organization.
    assert "user user_01ALICE <alice@example.com> in Personal: existing (roles: admin)" in first.stdout

    second = sync(internal_server, "make", "-s", "sync-org")
    assert second.returncode == 0, second.stderr
    assert 'organization Personal (org_01WORKOS, "Personal"): existing' in second.stdout
    assert "in Personal: existing (roles: admin)" in second.stdout

    user = requests.get(
        f"{internal_server.url}/internal/api/users/user_01ALICE",
        timeout=10,
        headers={"Authorization": f"Bearer {SECRET}", "X-User-ID": "user_01ALICE", "X-Org-ID": "org_01WORKOS"},
    )
    assert user.status_code == 200
    assert (user.json()["email"], user.json()["roles"]) == ("alice@example.com", ["admin"])

    # Another IdP organization with the same display name gets its own URL name.
    other = sync(internal_server, ORG_ID="org_02WORKOS", USER_ID="user_02BOB", USER_EMAIL="bob@example.com")
    assert other.returncode == 0, other.stderr
    assert "organization Personal-2 (org_02WORKOS" in other.stdout


def test_sync_org_fails_with_the_servers_message(internal_server: LiveServer, tmp_path: Path) -> None:
    wrong = sync(internal_server, OPENTACO_ENABLE_INTERNAL_ENDPOINTS="not-the-secret")
    assert wrong.returncode != 0
    assert "HTTP 403: invalid webhook secret" in wrong.stderr
    missing = sync(internal_server, ORG_ID="")
    assert missing.returncode != 0
    assert "ORG_ID" in missing.stderr
    down = sync(internal_server, STATESMAN_URL="http://127.0.0.1:9")
    assert down.returncode != 0
    assert "cannot reach" in down.stderr


def test_a_role_for_someone_not_yet_a_member_is_refused_saying_why(internal_server: LiveServer) -> None:
    assert sync(internal_server).returncode == 0  # alice creates the organization and is its admin
    asked = sync(internal_server, USER_ID="user_03CAROL", USER_EMAIL="carol@example.com", USER_ROLE="admin")
    assert asked.returncode != 0
    assert "HTTP 403" in asked.stderr and "not a member yet" in asked.stderr, asked.stderr
    assert "not found" not in asked.stderr  # the organization exists: the answer says what is really missing
    joined = sync(internal_server, USER_ID="user_03CAROL", USER_EMAIL="carol@example.com")
    assert joined.returncode == 0, joined.stderr
    assert "user_03CAROL <carol@example.com> in Personal: created (roles: default)" in joined.stdout
