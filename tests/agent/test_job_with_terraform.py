"""Jobs run by the agent's own code with the real Terraform 1.0.3 against the app served on a local port: the
override replaces the configuration's backend, the saved plan is what the apply applies, the new state is stored
as the run's, and sensitive values never reach the log."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.agent.client import AgentClient
from app.agent.control import JobControl
from app.agent.job import AgentSettings, Job, run_job
from app.extensions import db
from app.models import StateVersion
from app.repositories import runs, state_versions
from tests.agent_api.conftest import Guard, add_variable, agent_token, ensure_workspace, queue_run, tarball
from tests.e2e.terraform_cli import cli_config, make_provider_mirror, terraform_1_0_3

pytestmark = pytest.mark.slow

CONFIGURATION = b"""
terraform {
  backend "remote" {
    organization = "acme"
    workspaces { name = "prod" }
  }
}
variable "password" { type = string }
variable "greeting" { type = string }
resource "null_resource" "a" {
  triggers = { password = var.password, greeting = var.greeting }
}
output "greeting" { value = var.greeting }
"""


@pytest.fixture
def settings(tmp_path: Path) -> AgentSettings:
    mirror = make_provider_mirror(tmp_path / "mirror")
    rc = tmp_path / "terraform.rc"
    rc.write_text(cli_config(mirror))
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TF_CLI_CONFIG_FILE": str(rc)}
    environment["STATESMAN_AGENT_TOKEN"] = "must-not-reach-terraform"
    work = tmp_path / "work"
    work.mkdir()
    return AgentSettings(
        name="test-agent",
        work_dir=work,
        terraform_bin=str(terraform_1_0_3().path),
        grace_seconds=5,
        environment=environment,
    )


def run_next_job(client: AgentClient, settings: AgentSettings) -> tuple[Job, str | None]:
    claimed = client.claim(settings.name)
    assert claimed is not None
    job = Job.from_json(claimed)
    return job, run_job(client, job, settings, JobControl(job.timeout_seconds))


def log_of(app: Flask, run_id: str, phase: str) -> str:
    with app.app_context():
        run = runs.get_run(run_id)
        assert run is not None
        return runs.read_log(run, phase, 0, 1 << 20).decode()


def run_of(app: Flask, run_id: str) -> dict[str, Any]:
    with app.app_context():
        run = runs.get_run(run_id)
        assert run is not None
        return {"status": run.status, "error": run.error_message, "adds": run.resource_additions}


def test_a_run_is_planned_and_its_saved_plan_applied(runs_app: Flask, served: str, settings: AgentSettings) -> None:
    add_variable(runs_app, "prod", "password", "hunter2-very-secret", sensitive=True)
    add_variable(runs_app, "prod", "greeting", 'hello "world" ${not.a.reference}')
    run_id = queue_run(runs_app, archive=tarball({"main.tf": CONFIGURATION}))
    client = AgentClient(served, agent_token(runs_app))

    job, outcome = run_next_job(client, settings)
    assert job.phase == "plan" and outcome == "finished"
    assert run_of(runs_app, run_id) == {"status": "planned", "error": None, "adds": 1}
    plan_log = log_of(runs_app, run_id, "plan")
    assert plan_log.startswith("\x02Terraform v1.0.3\nOn linux_") and plan_log.endswith("\x03")
    assert "Initializing plugins and modules...\n" in plan_log and "Plan: 1 to add" in plan_log
    assert "hunter2-very-secret" not in plan_log and "***" in plan_log
    assert "must-not-reach-terraform" not in plan_log
    assert list((settings.work_dir or Path()).iterdir()) == []  # the job directory is gone

    with runs_app.app_context():
        run = runs.get_run(run_id)
        assert run is not None
        runs.apply_run(Guard(run.workspace), run)
    job, outcome = run_next_job(client, settings)
    assert job.phase == "apply" and outcome == "finished"
    assert run_of(runs_app, run_id)["status"] == "applied"
    apply_log = log_of(runs_app, run_id, "apply")
    header, _, rest = apply_log.partition("Initializing plugins and modules...\n")
    assert header.count("\n") == 2 and "Apply complete! Resources: 1 added" in rest
    assert "hunter2-very-secret" not in apply_log
    with runs_app.app_context():
        run = runs.get_run(run_id)
        assert run is not None and run.state_version_id is not None
        version = db.session.get(StateVersion, run.state_version_id)
        assert version is not None and version.run_id == run_id
        state = json.loads(state_versions.read_version_bytes(version))
    assert state["outputs"]["greeting"]["value"] == 'hello "world" ${not.a.reference}'
    assert [resource["type"] for resource in state["resources"]] == ["null_resource"]


def test_a_broken_configuration_ends_errored_with_terraform_s_words_in_the_log(
    runs_app: Flask, served: str, settings: AgentSettings
) -> None:
    run_id = queue_run(runs_app, archive=tarball({"main.tf": b'resource "null_resource" {'}))
    _, outcome = run_next_job(AgentClient(served, agent_token(runs_app)), settings)
    assert outcome == "errored"
    assert run_of(runs_app, run_id)["error"] == "terraform init failed (exit status 1)"
    assert "Error: terraform init failed" in log_of(runs_app, run_id, "plan")


def test_a_version_the_agent_does_not_have_is_reported_after_the_header(
    runs_app: Flask, served: str, settings: AgentSettings
) -> None:
    with runs_app.app_context():
        ensure_workspace("acme", "old", "remote").terraform_version = "0.12.31"
        db.session.commit()
    run_id = queue_run(runs_app, "old")
    _, outcome = run_next_job(AgentClient(served, agent_token(runs_app)), settings)
    assert outcome == "errored"
    error = run_of(runs_app, run_id)["error"]
    assert error.startswith("Terraform 0.12.31 is not installed on agent test-agent (looked for ")
    lines = log_of(runs_app, run_id, "plan").strip("\x02\x03").splitlines()
    assert lines[:3] == ["Terraform v0.12.31", lines[1], "Initializing plugins and modules..."]
    assert lines[1].startswith("On ") and error in lines[-1]


SLOW_APPLY = b"""
resource "null_resource" "slow" {
  provisioner "local-exec" {
    command = "echo provisioning-started; sleep 60"
  }
}
"""


def test_a_canceled_apply_is_interrupted_and_the_state_terraform_wrote_is_kept(
    runs_app: Flask, served: str, settings: AgentSettings
) -> None:
    run_id = queue_run(runs_app, archive=tarball({"main.tf": SLOW_APPLY}), auto_apply=True)
    client = AgentClient(served, agent_token(runs_app))
    assert run_next_job(client, settings)[1] == "finished"

    def cancel_once_provisioning() -> None:
        deadline = time.monotonic() + 60
        while "provisioning-started" not in log_of(runs_app, run_id, "apply") and time.monotonic() < deadline:
            time.sleep(0.2)
        with runs_app.app_context():
            run = runs.get_run(run_id)
            assert run is not None
            runs.cancel_run(Guard(run.workspace), run)

    canceler = threading.Thread(target=cancel_once_provisioning)
    canceler.start()
    started = time.monotonic()
    job, outcome = run_next_job(client, settings)
    canceler.join()
    assert job.phase == "apply" and outcome == "canceled" and time.monotonic() - started < 40
    assert run_of(runs_app, run_id)["status"] == "canceled"
    assert "Interrupt received" in log_of(runs_app, run_id, "apply")
    with runs_app.app_context():
        run = runs.get_run(run_id)
        assert run is not None and run.state_version_id is not None  # the tainted resource is in the state
        version = db.session.get(StateVersion, run.state_version_id)
        assert version is not None
        state = json.loads(state_versions.read_version_bytes(version))
    assert state["resources"][0]["instances"][0]["status"] == "tainted"
