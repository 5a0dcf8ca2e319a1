"""Remote execution end to end: real Terraform (1.0.3 with ``backend "remote"``, the newer one with the ``cloud``
block) against a live HTTPS server whose real ``statesman agent`` runs Terraform on real null resources: plan, apply
(auto-approved, answered yes and no), errors, the queue, destroy plans, run variables, sensitive values, cancel."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.agents import (
    RunningAgent,
    agent_token,
    make_remote_workspace,
    read_log,
    run_of,
    start_agent,
    wait_for_run,
)
from tests.e2e.terraform_cli import (
    Terraform,
    TerraformBinary,
    describe,
    null_resources,
    requires_terraform,
    resource_ids,
    stop,
)
from tests.e2e.tfc import TfcServer, start_tfc_server

pytestmark = pytest.mark.e2e

Runner = Callable[[str], Terraform]


@pytest.fixture(scope="module")
def runs_server(tmp_path_factory: pytest.TempPathFactory, provider_mirror: Path) -> Iterator[TfcServer]:
    """An HTTPS server with remote runs enabled (short leases, so a lost agent is noticed within seconds)."""
    tfc = start_tfc_server(
        tmp_path_factory.mktemp("runs"), provider_mirror, workers=3, extra_env={"RUNS_ENABLED": "true"}
    )
    try:
        yield tfc
    finally:
        tfc.server.stop()


@pytest.fixture(scope="module")
def agent(
    runs_server: TfcServer, terraform_bin: TerraformBinary, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningAgent]:
    """One agent running the Terraform under test (a saved plan is applied by the binary that made it)."""
    token = agent_token(runs_server)
    running = start_agent(
        runs_server, token, terraform_bin, tmp_path_factory.mktemp("agent"), name=f"agent-{terraform_bin.version_text}"
    )
    yield running
    running.stop()


@pytest.fixture
def remote(
    terraform_bin: TerraformBinary, terraform: Callable[..., Terraform], runs_server: TfcServer, agent: RunningAgent
) -> Callable[[str, str], Terraform]:
    """A runner whose configuration names a remote-execution workspace: ``backend "remote"`` on 1.0.3, the
    ``cloud`` block on newer Terraform."""

    def make(workspace: str, directory: str = "config") -> Terraform:
        make_remote_workspace(runs_server, workspace)
        return terraform(directory, **runs_server.env())

    return make


def block(tfc: TfcServer, binary: TerraformBinary, workspace: str) -> str:
    return tfc.backend(f'name = "{workspace}"', kind="cloud" if binary.at_least(1, 1) else "remote")


def runs_of(tfc: TfcServer, workspace: str) -> list[dict]:
    workspace_id = tfc.workspace(workspace)["id"]
    response = tfc.api("GET", f"workspaces/{workspace_id}/runs")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def assert_agent_alive(agent: RunningAgent) -> None:
    assert agent.process.poll() is None, agent.output()[-3000:]


def test_plan_streams_the_servers_plan_and_apply_writes_a_state_naming_the_run(
    remote: Callable[[str, str], Terraform],
    runs_server: TfcServer,
    terraform_bin: TerraformBinary,
    agent: RunningAgent,
    workspace: str,
) -> None:
    tf = remote(workspace)
    tf.write(null_resources({"web": "one"}, block(runs_server, terraform_bin, workspace)))
    tf.ok("init", "-input=false")
    plan = tf.expect(0, "plan", "-input=false")
    assert "Running plan in" in plan.stdout or "Running plan in the remote backend" in plan.stdout, describe(plan)
    assert "null_resource.web will be created" in plan.stdout and "Plan: 1 to add" in plan.stdout, describe(plan)
    speculative = runs_of(runs_server, workspace)[0]
    assert speculative["attributes"]["status"] == "planned_and_finished"
    assert speculative["attributes"]["plan-only"] is True

    applied = tf.ok("apply", "-auto-approve", "-input=false")
    assert "Apply complete! Resources: 1 added" in applied.stdout, describe(applied)
    run = runs_of(runs_server, workspace)[0]
    assert run["attributes"]["status"] == "applied"
    state = runs_server.current_state(workspace)
    assert list(resource_ids(state)) == ["null_resource.web"]
    current = runs_server.api("GET", f"workspaces/{runs_server.workspace(workspace)['id']}/current-state-version")
    assert current.json()["data"]["relationships"]["run"]["data"]["id"] == run["id"]
    assert not runs_server.workspace(workspace)["attributes"]["locked"]  # the run let go of the workspace
    again = tf.expect(0, "plan", "-input=false", "-detailed-exitcode")
    assert "No changes" in again.stdout, describe(again)
    assert_agent_alive(agent)


def test_apply_answered_yes_applies_and_answered_no_discards(
    remote: Callable[[str, str], Terraform], runs_server: TfcServer, terraform_bin: TerraformBinary, workspace: str
) -> None:
    tf = remote(workspace)
    tf.write(null_resources({"a": "one"}, block(runs_server, terraform_bin, workspace)))
    tf.ok("init", "-input=false")
    answered_no = _apply_answering(tf, "no")
    assert answered_no.returncode != 0 and "Apply discarded" in answered_no.stdout + answered_no.stderr, describe(
        answered_no
    )
    assert runs_of(runs_server, workspace)[0]["attributes"]["status"] == "discarded"
    missing = runs_server.api("GET", f"workspaces/{runs_server.workspace(workspace)['id']}/current-state-version")
    assert missing.status_code == 404  # nothing was written
    answered_yes = _apply_answering(tf, "yes")
    assert answered_yes.returncode == 0 and "Apply complete! Resources: 1 added" in answered_yes.stdout, describe(
        answered_yes
    )
    assert list(resource_ids(runs_server.current_state(workspace))) == ["null_resource.a"]


def _apply_answering(tf: Terraform, answer: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        [str(tf.binary.path), "apply", "-input=true", "-no-color"],
        cwd=tf.workdir,
        env={**tf.env, "TF_INPUT": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(f"{answer}\n", timeout=240)
    except subprocess.TimeoutExpired:
        stop(process)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_an_invalid_configuration_ends_errored_with_terraforms_error(
    remote: Callable[[str, str], Terraform], runs_server: TfcServer, terraform_bin: TerraformBinary, workspace: str
) -> None:
    tf = remote(workspace)
    broken = 'resource "null_resource" "x" {\n  triggers = {\n    value = var.never_declared\n  }\n}\n'
    tf.write(null_resources({}, block(runs_server, terraform_bin, workspace), outputs=broken))
    tf.ok("init", "-input=false")
    failed = tf.fails("apply", "-auto-approve", "-input=false")
    assert "Reference to undeclared input variable" in failed.stdout + failed.stderr, describe(failed)
    run = runs_of(runs_server, workspace)[0]
    assert run["attributes"]["status"] == "errored"
    log = read_log(runs_server, "plans", run["relationships"]["plan"]["data"]["id"])
    assert "Reference to undeclared input variable" in log


def test_a_second_run_queues_behind_the_first_and_runs_after_it(
    remote: Callable[[str, str], Terraform], runs_server: TfcServer, terraform_bin: TerraformBinary, workspace: str
) -> None:
    first = remote(workspace, "first")
    first.write(null_resources({"slow": "one"}, block(runs_server, terraform_bin, workspace), sleep=8))
    first.ok("init", "-input=false")
    background = first.popen("apply", "-auto-approve", "-input=false")
    try:
        _wait_until(lambda: any(r["attributes"]["status"] == "applying" for r in runs_of(runs_server, workspace)))
        second = remote(workspace, "second")
        second.write(null_resources({"slow": "two"}, block(runs_server, terraform_bin, workspace)))
        second.ok("init", "-input=false")
        queued = second.ok("apply", "-auto-approve", "-input=false")
        out, err = background.communicate(timeout=240)
    finally:
        stop(background)
    assert background.returncode == 0, out + err
    assert "Waiting for 1 run(s) to finish before being queued..." in queued.stdout, describe(queued)
    assert "manually locked" not in queued.stdout  # a run's lock is not taken for a user's
    runs = runs_of(runs_server, workspace)
    assert [r["attributes"]["status"] for r in runs[:2]] == ["applied", "applied"]
    newer, older = runs[0]["attributes"]["status-timestamps"], runs[1]["attributes"]["status-timestamps"]
    assert newer["planning-at"] >= older["applied-at"]  # the second started only when the first ended


def test_plan_destroy_and_destroy(
    remote: Callable[[str, str], Terraform], runs_server: TfcServer, terraform_bin: TerraformBinary, workspace: str
) -> None:
    tf = remote(workspace)
    tf.write(null_resources({"gone": "one"}, block(runs_server, terraform_bin, workspace)))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    planned = tf.ok("plan", "-destroy", "-input=false")
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in planned.stdout, describe(planned)
    assert runs_of(runs_server, workspace)[0]["attributes"]["is-destroy"] is True
    destroyed = tf.ok("destroy", "-auto-approve", "-input=false")
    # The server applies a saved destroy plan, so Terraform reports it as an apply, as Terraform Cloud's runs do.
    assert "Resources: 0 added, 0 changed, 1 destroyed." in destroyed.stdout, describe(destroyed)
    assert resource_ids(runs_server.current_state(workspace)) == {}


def test_run_variables_reach_terraform(
    remote: Callable[[str, str], Terraform], runs_server: TfcServer, terraform_bin: TerraformBinary, workspace: str
) -> None:
    requires_terraform(terraform_bin, 1, 1, "run variables (-var) with remote execution")
    tf = remote(workspace)
    variable = 'variable "greeting" {\n  type = string\n}\noutput "greeting" {\n  value = var.greeting\n}\n'
    tf.write(null_resources({}, block(runs_server, terraform_bin, workspace), outputs=variable))
    tf.ok("init", "-input=false")
    applied = tf.ok("apply", "-auto-approve", "-input=false", "-var", "greeting=hello from a run variable")
    assert 'greeting = "hello from a run variable"' in applied.stdout, describe(applied)
    state = runs_server.current_state(workspace)
    assert state["outputs"]["greeting"]["value"] == "hello from a run variable"


def test_a_sensitive_variable_never_appears_in_any_log(
    remote: Callable[[str, str], Terraform], runs_server: TfcServer, terraform_bin: TerraformBinary, workspace: str
) -> None:
    tf = remote(workspace)
    secret = "TOPSECRET-4b1d-value"
    workspace_id = runs_server.workspace(workspace)["id"]
    for key, category in (("db_password", "terraform"), ("DB_TOKEN", "env")):
        body = {
            "data": {
                "type": "vars",
                "attributes": {"key": key, "value": secret, "category": category, "sensitive": True},
            }
        }
        created = runs_server.api("POST", f"workspaces/{workspace_id}/vars", json=body)
        assert created.status_code == 201, created.text
    config = (
        null_resources(
            {"leak": "one"},
            block(runs_server, terraform_bin, workspace),
            command="echo password=${var.db_password} token=$DB_TOKEN",
        )
        + 'variable "db_password" {\n  type = string\n}\n'
    )
    tf.write(config)
    tf.ok("init", "-input=false")
    applied = tf.ok("apply", "-auto-approve", "-input=false")
    assert "token=***" in applied.stdout and "password=***" in applied.stdout, describe(applied)
    run = runs_of(runs_server, workspace)[0]
    logs = read_log(runs_server, "plans", run["relationships"]["plan"]["data"]["id"]) + read_log(
        runs_server, "applies", run["relationships"]["apply"]["data"]["id"]
    )
    json_plan = runs_server.api("GET", f"plans/{run['relationships']['plan']['data']['id']}/json-output")
    assert json_plan.status_code == 200 and "db_password" in json_plan.text  # the variable is there, masked
    for text in (applied.stdout, applied.stderr, logs, json_plan.text, runs_server.server.log_path.read_text()):
        assert secret not in text
    shown = runs_server.api("GET", f"workspaces/{workspace_id}/vars").text
    assert secret not in shown


def test_cancel_of_a_long_apply_stops_terraform(
    remote: Callable[[str, str], Terraform],
    runs_server: TfcServer,
    terraform_bin: TerraformBinary,
    agent: RunningAgent,
    workspace: str,
) -> None:
    tf = remote(workspace)
    # A sleep no other test runs, so its process can be found; one per Terraform version, because the two versions'
    # runs of this test may execute at the same time on other pytest workers.
    marker = 289 if terraform_bin.at_least(1, 1) else 287
    tf.write(null_resources({"long": "one"}, block(runs_server, terraform_bin, workspace), sleep=marker))
    tf.ok("init", "-input=false")
    background = tf.popen("apply", "-auto-approve", "-input=false")
    try:
        _wait_until(lambda: _sleeping(marker), timeout=180)
        os.killpg(background.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, as in a terminal
        out, err = background.communicate(timeout=120)
    finally:
        stop(background)
    run = wait_for_run(runs_server, runs_of(runs_server, workspace)[0]["id"], timeout=120)
    assert run["attributes"]["status"] in ("canceled", "errored"), out + err
    assert run["attributes"]["status"] == "canceled", run
    _wait_until(lambda: not _sleeping(marker), timeout=60)
    assert not runs_server.workspace(workspace)["attributes"]["locked"]
    assert_agent_alive(agent)


def _sleeping(seconds: int) -> bool:
    found = subprocess.run(["pgrep", "-f", f"sleep {seconds}"], capture_output=True, text=True)
    return found.returncode == 0


def _wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.3)


def test_a_run_is_visible_through_the_api_with_its_logs(
    remote: Callable[[str, str], Terraform], runs_server: TfcServer, terraform_bin: TerraformBinary, workspace: str
) -> None:
    tf = remote(workspace)
    tf.write(null_resources({"seen": "one"}, block(runs_server, terraform_bin, workspace)))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    run = run_of(runs_server, runs_of(runs_server, workspace)[0]["id"])
    plan_log = read_log(runs_server, "plans", run["relationships"]["plan"]["data"]["id"])
    apply_log = read_log(runs_server, "applies", run["relationships"]["apply"]["data"]["id"])
    assert "Plan: 1 to add" in plan_log and "Apply complete!" in apply_log
    plan = runs_server.api("GET", f"plans/{run['relationships']['plan']['data']['id']}").json()["data"]
    assert plan["attributes"]["resource-additions"] == 1 and plan["attributes"]["has-changes"] is True


def test_a_users_lock_holds_the_run_until_unlocked(
    remote: Callable[[str, str], Terraform], runs_server: TfcServer, terraform_bin: TerraformBinary, workspace: str
) -> None:
    tf = remote(workspace)
    tf.write(null_resources({"held": "one"}, block(runs_server, terraform_bin, workspace)))
    tf.ok("init", "-input=false")
    runs_server.lock(workspace, "maintenance")
    background = tf.popen("apply", "-auto-approve", "-input=false")
    try:
        _wait_until(lambda: any(r["attributes"]["status"] == "pending" for r in runs_of(runs_server, workspace)))
        time.sleep(3)  # the run must stay pending while the user holds the lock
        assert runs_of(runs_server, workspace)[0]["attributes"]["status"] == "pending"
        runs_server.unlock(workspace)
        out, err = background.communicate(timeout=240)
    finally:
        stop(background)
    assert background.returncode == 0, out + err
    assert "Waiting for the manually locked workspace to be unlocked..." in out, out
    assert "Apply complete! Resources: 1 added" in out
