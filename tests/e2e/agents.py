"""Real ``statesman agent`` processes beside a live server, and the TFE API calls the run tests make."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.terraform_cli import TerraformBinary, cli_config
from tests.e2e.tfc import TfcServer
from tests.live_server import REPO_ROOT
from tests.run_factories import tarball

FINAL = {"applied", "planned_and_finished", "errored", "discarded", "canceled"}


@dataclass
class RunningAgent:
    """One agent process; its output goes to ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    work_dir: Path
    children: list[int] = field(default_factory=list)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of its whole process group (Terraform and what it started too)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        self.kill_group()

    def kill(self) -> None:
        """``kill -9`` of the agent process alone: its Terraform is orphaned, as when a host dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)


def agent_token(tfc: TfcServer, org: str = "acme", pool: str | None = None) -> str:
    """A new agent token (``flask agents token create``), printed once by the CLI."""
    return created_agent_token(tfc, org, pool)[1]


def created_agent_token(tfc: TfcServer, org: str = "acme", pool: str | None = None) -> tuple[str, str]:
    """A new agent token's id (from the CLI's note on stderr) and its secret (stdout)."""
    command = ["agents", "token", "create", "--org", org] + (["--pool", pool] if pool else [])
    result = tfc.server.flask(*command)
    token_id = result.stderr.split("created agent token ")[1].split()[0]
    return token_id, result.stdout.strip().splitlines()[-1].strip()


def start_agent(
    tfc: TfcServer,
    token: str,
    terraform: TerraformBinary,
    directory: Path,
    name: str = "agent-1",
    extra_env: dict[str, str] | None = None,
) -> RunningAgent:
    """``statesman agent --url <server>`` with its token in STATESMAN_AGENT_TOKEN and Terraform from ``terraform``."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / f"{name}.tfrc"
    config.write_text(cli_config(tfc.mirror))
    work_dir = directory / f"{name}-work"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STATESMAN_", "OPENTACO_", "TF_", "KMS_", "AWS_"))
    }
    env.update(
        {
            "STATESMAN_AGENT_TOKEN": token,
            "TERRAFORM_BIN": str(terraform.path),
            "TF_CLI_CONFIG_FILE": str(config),
            "REQUESTS_CA_BUNDLE": str(tfc.ca),
            "CHECKPOINT_DISABLE": "1",
            **(extra_env or {}),
        }
    )
    log_path = directory / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli.server",
            "agent",
            "--url",
            tfc.server.url,
            "--name",
            name,
            "--work-dir",
            str(work_dir),
            "--poll-interval",
            "0.2",
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return RunningAgent(name, process, log_path, work_dir)


def make_remote_workspace(tfc: TfcServer, name: str, **attributes: Any) -> dict[str, Any]:
    """Create workspace ``name`` in execution mode remote (or update it to that)."""
    body = {"data": {"type": "workspaces", "attributes": {"name": name, "execution-mode": "remote", **attributes}}}
    response = tfc.api("POST", "organizations/acme/workspaces", json=body)
    if response.status_code == 409 and "already exists" in response.text:
        response = tfc.api("PATCH", f"organizations/acme/workspaces/{name}", json=body)
    assert response.status_code in (200, 201), response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def queue_run(tfc: TfcServer, workspace_id: str, files: dict[str, str], **attributes: Any) -> str:
    """Upload a configuration and create a run of it through the API; returns the run id."""
    import requests

    created = tfc.api(
        "POST",
        f"workspaces/{workspace_id}/configuration-versions",
        json={"data": {"type": "configuration-versions", "attributes": {"auto-queue-runs": False}}},
    )
    assert created.status_code == 201, created.text
    version = created.json()["data"]
    uploaded = requests.put(version["attributes"]["upload-url"], data=tarball(files), timeout=60, verify=str(tfc.ca))
    assert uploaded.status_code == 200, uploaded.text
    run = tfc.api(
        "POST",
        "runs",
        json={
            "data": {
                "type": "runs",
                "attributes": attributes,
                "relationships": {
                    "workspace": {"data": {"type": "workspaces", "id": workspace_id}},
                    "configuration-version": {"data": {"type": "configuration-versions", "id": version["id"]}},
                },
            }
        },
    )
    assert run.status_code == 201, run.text
    run_id: str = run.json()["data"]["id"]
    return run_id


def run_of(tfc: TfcServer, run_id: str) -> dict[str, Any]:
    response = tfc.api("GET", f"runs/{run_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def wait_for_run(
    tfc: TfcServer, run_id: str, until: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 240.0
) -> dict[str, Any]:
    """Poll the run until ``until(run)`` (default: a final status) holds."""
    check = until or (lambda run: run["attributes"]["status"] in FINAL)
    deadline = time.monotonic() + timeout
    while True:
        run = run_of(tfc, run_id)
        if check(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['attributes']['status']} after {timeout}s")
        time.sleep(0.3)


def read_log(tfc: TfcServer, kind: str, phase_id: str) -> str:
    """A plan's or apply's whole log through its tokenized ``log-read-url`` (STX and ETX removed)."""
    import requests

    url = tfc.api("GET", f"{kind}/{phase_id}").json()["data"]["attributes"]["log-read-url"]
    response = requests.get(url, params={"offset": 0, "limit": 10_000_000}, timeout=30, verify=str(tfc.ca))
    assert response.status_code == 200, response.text
    return response.content.decode(errors="replace").strip("\x02\x03")
