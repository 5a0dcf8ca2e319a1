"""End to end with real Terraform (1.0.3 and the newest): sync an org and a user, create a unit through the
internal API, apply with the user's token, list versions, restore an older one, and see it as the current state in
``terraform plan``; the audit log shows each step with the right user."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.terraform_cli import Terraform
from tests.live_server import REPO_ROOT, LiveServer, start_server

pytestmark = pytest.mark.e2e
SECRET = "e2e-webhook-secret"
USER, EMAIL, ORG_ID = "user_01ALICE", "alice@example.com", "org_01ACME"


@pytest.fixture
def internal_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "server", workers=2, extra_env={"OPENTACO_ENABLE_INTERNAL_ENDPOINTS": SECRET})
    yield server
    server.stop()


def ui(server: LiveServer, method: str, path: str, body: Any = None) -> requests.Response:
    """A call of the web UI's server side, acting for alice in her organization."""
    return requests.request(
        method,
        f"{server.url}/internal/api{path}",
        json=body,
        timeout=30,
        headers={
            "Authorization": f"Bearer {SECRET}",
            "X-User-ID": USER,
            "X-Email": EMAIL,
            "X-Org-ID": ORG_ID,
            "X-Request-ID": "e2e",
        },
    )


def config(address: str, greeting: str) -> str:
    return (
        'terraform {\n  backend "http" {\n'
        f'    address = "{address}"\n    lock_address = "{address}"\n    unlock_address = "{address}"\n'
        '    username = "terraform"\n  }\n}\n'
        f'output "greeting" {{ value = "{greeting}" }}\n'
    )


def test_sync_create_apply_restore_plan_audit(internal_server: LiveServer, terraform: Callable[..., Terraform]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORG_", "USER_", "OPENTACO_", "STATESMAN_"))}
    env.update(
        {
            "STATESMAN_URL": internal_server.url,
            "OPENTACO_ENABLE_INTERNAL_ENDPOINTS": SECRET,
            "ORG_ID": ORG_ID,
            "ORG_NAME": "Acme Corp",
            "USER_ID": USER,
            "USER_EMAIL": EMAIL,
        }
    )
    synced = subprocess.run(["scripts/sync-org.sh"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert synced.returncode == 0, synced.stderr
    org = ui(internal_server, "GET", "/me").json()["organization"]["name"]
    assert org == "acme-corp"

    unit = ui(internal_server, "POST", "/units", {"name": "app", "tfe_engine": "terraform"})
    assert unit.status_code == 201, unit.text
    token = internal_server.flask("tokens", "create", "--org", org, "--user", USER).stdout.strip()

    address = f"{internal_server.url}/state/{org}/app"
    tf = terraform(TF_HTTP_PASSWORD=token)
    tf.write(config(address, "first"))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    tf.write(config(address, "second"))
    tf.ok("apply", "-auto-approve", "-input=false")

    versions = ui(internal_server, "GET", f"/units/{unit.json()['id']}/versions").json()
    assert versions["count"] == 2
    latest, older = versions["versions"]
    assert (latest["isLatest"], older["isLatest"]) == (True, False)
    assert latest["serial"] > older["serial"]

    restored = ui(internal_server, "POST", "/units/app/restore", {"timestamp": older["timestamp"], "lock_id": ""})
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"]["serial"] == latest["serial"] + 1

    assert tf.ok("output", "-raw", "greeting").stdout.strip() == "first"
    plan = tf.expect(2, "plan", "-input=false", "-detailed-exitcode")
    assert '~ greeting = "first" -> "second"' in plan.stdout, plan.stdout

    events = ui(internal_server, "GET", "/audit?unit=app&page_size=200").json()["events"]
    steps = [(e["action"], e["actor"], e["outcome"]) for e in reversed(events)]
    assert steps[0] == ("workspace.create", USER, "ok")
    writes = [s for s in steps if s[0] == "state.write"]
    assert writes[:2] == [("state.write", USER, "ok"), ("state.write", USER, "ok")]
    assert ("lock", USER, "ok") in steps and ("unlock", USER, "ok") in steps
    assert steps.index(("state.rollback", USER, "ok")) > steps.index(writes[1])
    assert writes[2] == ("state.write", USER, "forced")  # the rollback's own write
    # Terraform's plan locks too: the last lock and unlock come after the restore, by the token's user.
    assert steps[-1] == ("unlock", USER, "ok")
    org_events = ui(internal_server, "GET", "/audit?action=token.create").json()["events"]
    assert [e["detail"]["user"] for e in org_events] == [USER]
    assert ui(internal_server, "GET", "/audit?action=org.create").json()["events"][0]["actor"] == USER
