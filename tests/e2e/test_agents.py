"""Agents as separate processes against a live server: two agents sharing 20 runs on 10 workspaces, an agent
killed with ``kill -9`` mid-run, a revoked token, and another organization's agent, with real Terraform."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agents import (
    RunningAgent,
    agent_token,
    created_agent_token,
    make_remote_workspace,
    queue_run,
    read_log,
    run_of,
    start_agent,
    wait_for_run,
)
from tests.e2e.terraform_cli import TerraformBinary, null_resources, resource_ids
from tests.e2e.tfc import TfcServer, start_tfc_server

pytestmark = pytest.mark.e2e

LEASE_SECONDS = 10  # short, so a lost agent is noticed quickly; long enough for a heartbeat under load


@pytest.fixture(scope="module")
def agents_server(tmp_path_factory: pytest.TempPathFactory, provider_mirror: Path) -> Iterator[TfcServer]:
    """An HTTPS server with remote runs enabled and a short lease, so a lost agent is noticed within seconds."""
    tfc = start_tfc_server(
        tmp_path_factory.mktemp("agents"),
        provider_mirror,
        workers=3,
        extra_env={"RUNS_ENABLED": "true", "RUN_LEASE": f"{LEASE_SECONDS}s"},
    )
    try:
        yield tfc
    finally:
        tfc.server.stop()


@pytest.fixture
def agents(agents_server: TfcServer, terraform_bin: TerraformBinary, tmp_path: Path) -> Iterator[list[RunningAgent]]:
    """Started agents, stopped (with whatever Terraform they left) at the end of the test."""
    started: list[RunningAgent] = []
    yield started
    for running in started:
        running.stop()


def trivial(name: str) -> dict[str, str]:
    return {"main.tf": null_resources({"item": name})}


def test_two_agents_share_twenty_runs_each_executed_once_and_never_two_in_one_workspace(
    agents_server: TfcServer, terraform_bin: TerraformBinary, agents: list[RunningAgent], tmp_path: Path, workspace: str
) -> None:
    token = agent_token(agents_server)
    prefix = f"race-{terraform_bin.version_text}"
    workspaces = [make_remote_workspace(agents_server, f"{prefix}-{i}")["id"] for i in range(10)]
    run_ids = [
        queue_run(agents_server, workspaces[i % 10], trivial(f"r{i}"), **{"auto-apply": True, "message": f"r{i}"})
        for i in range(20)
    ]
    for name in ("racer-a", "racer-b"):
        agents.append(start_agent(agents_server, token, terraform_bin, tmp_path, name=name))
    finished = [wait_for_run(agents_server, run_id, timeout=600) for run_id in run_ids]
    failed = [run["id"] for run in finished if run["attributes"]["status"] != "applied"]
    assert not failed, [agents_server.server.flask("runs", "show", run_id).stdout[-1500:] for run_id in failed]
    for racer in agents:
        assert racer.process.poll() is None, racer.output()[-2000:]
    # Exactly once: each run's plan and apply ran once (one log each, from one agent), and each wrote one version.
    by_agent: dict[str, int] = {}
    for run in finished:
        for kind, relation in (("plans", "plan"), ("applies", "apply")):
            log = read_log(agents_server, kind, run["relationships"][relation]["data"]["id"])
            assert log.count("Terraform v") <= 2, log  # one header, one version line at most: no second execution
        by_agent[_agent_of(agents_server, run)] = by_agent.get(_agent_of(agents_server, run), 0) + 1
    assert set(by_agent) == {"racer-a", "racer-b"}, by_agent  # both took part
    for workspace_id in workspaces:
        filters = {"filter[workspace][name]": _name(agents_server, workspace_id), "filter[organization][name]": "acme"}
        versions = agents_server.api("GET", "state-versions", params=filters)
        assert versions.status_code == 200, versions.text
        assert len(versions.json()["data"]) == 2  # two runs, one version each
    # Never two at once in one workspace: per workspace, one run's execution ended before the next began.
    for workspace_id in workspaces:
        spans = sorted(
            (
                run["attributes"]["status-timestamps"]["planning-at"],
                run["attributes"]["status-timestamps"]["applied-at"],
            )
            for run in finished
            if run["relationships"]["workspace"]["data"]["id"] == workspace_id
        )
        assert len(spans) == 2 and spans[0][1] <= spans[1][0], spans


def _agent_of(tfc: TfcServer, run: dict[str, Any]) -> str:
    result = tfc.server.flask("runs", "show", run["id"])
    line = next(line for line in result.stdout.splitlines() if "agent:" in line)
    return line.split("agent:")[1].split(";")[0].strip()


def _name(tfc: TfcServer, workspace_id: str) -> str:
    response = tfc.api("GET", f"workspaces/{workspace_id}")
    assert response.status_code == 200, response.text
    name: str = response.json()["data"]["attributes"]["name"]
    return name


def test_a_killed_agents_run_errors_with_a_reason_and_its_lock_is_released_after_the_lease(
    agents_server: TfcServer, terraform_bin: TerraformBinary, agents: list[RunningAgent], tmp_path: Path, workspace: str
) -> None:
    token = agent_token(agents_server)
    ws = make_remote_workspace(agents_server, workspace)
    run_id = queue_run(
        agents_server, ws["id"], {"main.tf": null_resources({"slow": "x"}, sleep=293)}, **{"auto-apply": True}
    )
    doomed = start_agent(agents_server, token, terraform_bin, tmp_path, name="doomed")
    agents.append(doomed)
    wait_for_run(agents_server, run_id, lambda run: run["attributes"]["status"] == "applying", timeout=240)
    assert agents_server.workspace(workspace)["attributes"]["locked"]
    doomed.kill()
    killed_at = time.monotonic()
    errored = wait_for_run(agents_server, run_id, timeout=LEASE_SECONDS * 6)
    assert time.monotonic() - killed_at >= LEASE_SECONDS / 2  # not before the lease could run out
    assert errored["attributes"]["status"] == "errored"
    reason = agents_server.server.flask("runs", "show", run_id).stdout
    assert "stopped renewing its lease" in reason and "doomed" in reason, reason
    assert not agents_server.workspace(workspace)["attributes"]["locked"]
    # The workspace is free again: the next run goes through on a healthy agent.
    healthy = start_agent(agents_server, token, terraform_bin, tmp_path, name="healthy")
    agents.append(healthy)
    next_run = queue_run(agents_server, ws["id"], trivial("after"), **{"auto-apply": True})
    after = wait_for_run(agents_server, next_run)
    plan_log = read_log(agents_server, "plans", after["relationships"]["plan"]["data"]["id"])
    assert after["attributes"]["status"] == "applied", plan_log
    subprocess.run(["pkill", "-f", "sleep 293"], check=False)  # the dead agent's orphaned Terraform


def test_an_agent_with_a_revoked_token_is_refused(
    agents_server: TfcServer, terraform_bin: TerraformBinary, agents: list[RunningAgent], tmp_path: Path
) -> None:
    token_id, token = created_agent_token(agents_server)
    agents_server.server.flask("agents", "token", "revoke", token_id)
    refused = start_agent(agents_server, token, terraform_bin, tmp_path, name="revoked")
    agents.append(refused)
    refused.process.wait(timeout=60)
    assert refused.process.returncode != 0
    assert "401" in refused.output() or "refused" in refused.output().lower(), refused.output()


def test_an_agent_of_another_organization_never_receives_a_job(
    agents_server: TfcServer, terraform_bin: TerraformBinary, agents: list[RunningAgent], tmp_path: Path, workspace: str
) -> None:
    agents_server.server.flask("orgs", "create", "globex", check=False)
    outsider = start_agent(agents_server, agent_token(agents_server, "globex"), terraform_bin, tmp_path, name="globex")
    agents.append(outsider)
    ws = make_remote_workspace(agents_server, workspace)
    run_id = queue_run(agents_server, ws["id"], trivial("mine"), **{"auto-apply": True})
    time.sleep(5)  # many claim rounds of the outsider
    assert run_of(agents_server, run_id)["attributes"]["status"] == "plan_queued"
    insider = start_agent(agents_server, agent_token(agents_server), terraform_bin, tmp_path, name="insider")
    agents.append(insider)
    assert wait_for_run(agents_server, run_id)["attributes"]["status"] == "applied"
    assert "claimed" not in outsider.output() or run_id not in outsider.output()


@pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")
def test_the_pytfe_sdk_drives_a_run_from_upload_to_apply(
    agents_server: TfcServer, terraform_bin: TerraformBinary, agents: list[RunningAgent], tmp_path: Path, workspace: str
) -> None:
    from pytfe import TFEClient, TFEConfig

    agents.append(start_agent(agents_server, agent_token(agents_server), terraform_bin, tmp_path, name="sdk-agent"))
    ws = make_remote_workspace(agents_server, workspace)
    config = tmp_path / "sdk-config"
    config.mkdir()
    (config / "main.tf").write_text(null_resources({"sdk": "one"}))
    settings = TFEConfig(address=agents_server.server.url, token=agents_server.token, ca_bundle=str(agents_server.ca))
    with TFEClient(settings) as client:
        _sdk_run(client, ws["id"], config)
    plan_id = run_of(agents_server, run_id_of(agents_server, workspace))["relationships"]["plan"]["data"]["id"]
    with TFEClient(settings) as client:
        plan = client.plans.read(plan_id)
    assert plan.resource_additions == 1 and plan.has_changes
    assert list(resource_ids(agents_server.current_state(workspace))) == ["null_resource.sdk"]


def run_id_of(tfc: TfcServer, workspace: str) -> str:
    """The workspace's newest run."""
    workspace_id = tfc.workspace(workspace)["id"]
    run_id: str = tfc.api("GET", f"workspaces/{workspace_id}/runs").json()["data"][0]["id"]
    return run_id


def _sdk_run(client: Any, workspace_id: str, config: Path) -> None:
    """Configuration version, upload, run, poll until planned, apply, poll until applied: all through pytfe."""
    from pytfe.models import ConfigurationVersionCreateOptions, RunCreateOptions
    from pytfe.models import Workspace as SdkWorkspace

    version = client.configuration_versions.create(
        workspace_id, ConfigurationVersionCreateOptions(auto_queue_runs=False)
    )
    client.configuration_versions.upload(version.upload_url, str(config))
    deadline = time.monotonic() + 60
    while client.configuration_versions.read(version.id).status.value != "uploaded":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    run = client.runs.create(
        RunCreateOptions(workspace=SdkWorkspace(id=workspace_id), configuration_version=version, message="from pytfe")
    )
    deadline = time.monotonic() + 240
    while (status := client.runs.read(run.id).status.value) != "planned":
        assert status not in ("errored", "canceled", "discarded") and time.monotonic() < deadline, status
        time.sleep(0.3)
    planned = client.runs.read(run.id)
    assert planned.has_changes and planned.actions is not None and planned.actions.is_confirmable
    client.runs.apply(run.id)
    while (status := client.runs.read(run.id).status.value) != "applied":
        assert status not in ("errored", "canceled") and time.monotonic() < deadline, status
        time.sleep(0.3)


def test_queued_runs_survive_a_server_restart(
    tmp_path: Path, provider_mirror: Path, terraform_bin: TerraformBinary, agents: list[RunningAgent], workspace: str
) -> None:
    tfc = start_tfc_server(tmp_path / "restarted", provider_mirror, workers=2, extra_env={"RUNS_ENABLED": "true"})
    try:
        ws = make_remote_workspace(tfc, workspace)
        first = queue_run(tfc, ws["id"], trivial("first"), **{"auto-apply": True})
        second = queue_run(tfc, ws["id"], trivial("second"), **{"auto-apply": True})
        tfc.server.stop()  # no agent has seen them yet
        tfc.server.start()
        assert [run_of(tfc, run_id)["attributes"]["status"] for run_id in (first, second)] == ["plan_queued", "pending"]
        agents.append(start_agent(tfc, agent_token(tfc), terraform_bin, tmp_path, name="after-restart"))
        assert [wait_for_run(tfc, run_id)["attributes"]["status"] for run_id in (first, second)] == ["applied"] * 2
    finally:
        tfc.server.stop()
