"""``make run`` starts one agent beside the development server: a workspace in execution mode "remote" runs its
plan and apply there with no extra step; the agent's token is kept private in the data directory and reused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.launcher import launch, user_environment
from tests.e2e.terraform_cli import TerraformBinary
from tests.e2e.test_dev_https import two_free_ports
from tests.run_factories import tarball

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": "Bearer dev", "Content-Type": "application/vnd.api+json"}


def test_make_runs_agent_executes_a_remote_run(tmp_path: Path, terraform_bin: TerraformBinary) -> None:
    env = user_environment(
        STATESMAN_ENV="development",
        FLASK_APP="app",
        WEB_CONCURRENCY="2",
        RUNS_ENABLED="true",
        TERRAFORM_BIN=str(terraform_bin.path),
        CHECKPOINT_DISABLE="1",
        STATESMAN_DEV_HTTPS_PORT="0",
    )
    migrated = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    port = two_free_ports()
    started = launch(["-listen", f"127.0.0.1:{port}", "-auth-disable", "-agent"], tmp_path, env)
    api = f"http://127.0.0.1:{port}/api/v2"
    try:
        started.wait_for(f"http://127.0.0.1:{port}/healthz")
        token_file = tmp_path / "data" / "agent.token"
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        first_token = token_file.read_text()
        assert "agent for organization 'acme' started" in started.output()
        run = _remote_run(api)
        assert run["attributes"]["status"] == "applied", run
        state = requests.get(f"http://127.0.0.1:{port}/state/acme/laptop", timeout=10).json()
        assert state["outputs"]["where"]["value"] == "on the development agent"
        assert first_token.strip() not in started.output()  # the token is never printed
    finally:
        assert started.stop() == 0
    again = launch(["-listen", f"127.0.0.1:{port}", "-auth-disable", "-agent"], tmp_path, env)
    try:
        again.wait_for(f"http://127.0.0.1:{port}/healthz")
    finally:
        again.stop()
    assert token_file.read_text() == first_token  # reused, not one more token per start


def test_the_agent_flag_needs_runs_enabled(tmp_path: Path) -> None:
    env = user_environment(STATESMAN_ENV="development", FLASK_APP="app", RUNS_ENABLED="false")
    subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=tmp_path, env=env, check=True, timeout=120)
    started = launch(["-listen", f"127.0.0.1:{two_free_ports()}", "-auth-disable", "-agent"], tmp_path, env)
    assert started.process.wait(timeout=60) != 0
    assert "-agent needs remote runs enabled (RUNS_ENABLED=true)" in started.output()


def _remote_run(api: str) -> dict:
    import time

    body = {"data": {"type": "workspaces", "attributes": {"name": "laptop", "execution-mode": "remote"}}}
    created = requests.post(f"{api}/organizations/acme/workspaces", json=body, headers=HEADERS, timeout=10)
    assert created.status_code == 201, created.text
    workspace_id = created.json()["data"]["id"]
    version = requests.post(
        f"{api}/workspaces/{workspace_id}/configuration-versions",
        json={"data": {"type": "configuration-versions", "attributes": {"auto-queue-runs": False}}},
        headers=HEADERS,
        timeout=10,
    ).json()["data"]
    archive = tarball({"main.tf": 'output "where" {\n  value = "on the development agent"\n}\n'})
    assert requests.put(version["attributes"]["upload-url"], data=archive, timeout=10).status_code == 200
    relationships = {
        "workspace": {"data": {"type": "workspaces", "id": workspace_id}},
        "configuration-version": {"data": {"type": "configuration-versions", "id": version["id"]}},
    }
    body = {"data": {"type": "runs", "attributes": {"auto-apply": True}, "relationships": relationships}}
    run_id = requests.post(f"{api}/runs", json=body, headers=HEADERS, timeout=10).json()["data"]["id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        run = requests.get(f"{api}/runs/{run_id}", headers=HEADERS, timeout=10).json()["data"]
        if run["attributes"]["status"] in ("applied", "errored", "canceled", "planned_and_finished"):
            return dict(run)
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not finish")
