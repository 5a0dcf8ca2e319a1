"""Remote runs: queue latency with one idle agent, runs per minute with two agents, server CPU per run."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from bench.report import Row, Stat
from bench.servers import ORG, BenchServer, cpu_seconds, scratch_dir, statesman
from tests.live_server import REPO_ROOT
from tests.run_factories import tarball

LATENCY_RUNS = 15
THROUGHPUT_RUNS = 20
WORKSPACES = 4
POLL_SECONDS = 0.5  # the agent's default --poll-interval
FINAL = {"applied", "planned_and_finished", "errored", "discarded", "canceled"}


def run() -> list[Row]:
    terraform = shutil.which(os.environ.get("TERRAFORM_BIN", "terraform"))
    if terraform is None:
        return [Row("remote runs", None, notes="skipped: no terraform on PATH (TERRAFORM_BIN)")]
    directory = scratch_dir("runs")
    try:
        with statesman("runs", env={"RUNS_ENABLED": "true"}) as server:
            api = Api(server)
            token = server.live.flask("agents", "token", "create", "--org", ORG).stdout.strip().splitlines()[-1]
            workspaces = [api.remote_workspace(f"bench-runs-{i}") for i in range(WORKSPACES)]
            with agent(server, token, terraform, directory, "idle-agent"):
                latencies = [_queue_latency(api, workspaces[0], i) for i in range(LATENCY_RUNS)]
            runs_per_minute, cpu_per_run, statuses = _throughput(api, server, token, terraform, directory, workspaces)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    notes = f"{THROUGHPUT_RUNS} auto-applied runs on {WORKSPACES} workspaces; outcomes {statuses}"
    return [
        Row(
            "run queue latency p50 (run created -> claimed by an idle agent)",
            Stat.of(latencies, "ms"),
            notes=f"{LATENCY_RUNS} plan-only runs arriving at random; the agent's default poll of {POLL_SECONDS} s",
        ),
        Row("runs per minute, one host, two agents, trivial configuration", Stat.of([runs_per_minute]), notes=notes),
        Row("server CPU per run (plan + apply)", Stat.of([cpu_per_run], "ms"), notes="gunicorn master and workers"),
    ]


class Api:
    """The TFE API calls a run takes, with the bench server's token."""

    def __init__(self, server: BenchServer) -> None:
        self.base = f"{server.url}/api/v2"
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"Bearer {server.token}", "Content-Type": "application/vnd.api+json"}
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(method, f"{self.base}/{path}", json=body, timeout=30)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def remote_workspace(self, name: str) -> str:
        body = {"data": {"type": "workspaces", "attributes": {"name": name, "execution-mode": "remote"}}}
        workspace_id: str = self.call("POST", f"organizations/{ORG}/workspaces", body)["data"]["id"]
        return workspace_id

    def queue(self, workspace_id: str, marker: int, **attributes: Any) -> tuple[str, float]:
        """Upload a trivial configuration and create a run of it; the run id and when it was created."""
        body = {"data": {"type": "configuration-versions", "attributes": {"auto-queue-runs": False}}}
        version = self.call("POST", f"workspaces/{workspace_id}/configuration-versions", body)["data"]
        upload = requests.put(
            version["attributes"]["upload-url"],
            data=tarball({"main.tf": f'output "marker" {{\n  value = {marker}\n}}\n'}),
            timeout=30,
        )
        upload.raise_for_status()
        relationships = {
            "workspace": {"data": {"type": "workspaces", "id": workspace_id}},
            "configuration-version": {"data": {"type": "configuration-versions", "id": version["id"]}},
        }
        created = self.call(
            "POST", "runs", {"data": {"type": "runs", "attributes": attributes, "relationships": relationships}}
        )
        return created["data"]["id"], time.monotonic()

    def run(self, run_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", f"runs/{run_id}")["data"]
        return data

    def wait(self, run_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (found := self.run(run_id))["attributes"]["status"] not in FINAL:
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run_id} still {found['attributes']['status']} after {timeout}s")
            time.sleep(0.05)
        return found


def _queue_latency(api: Api, workspace_id: str, marker: int) -> float:
    # Runs arrive at random moments of the agent's polling, not just after its last claim.
    time.sleep(random.uniform(0, POLL_SECONDS))
    run_id, _ = api.queue(workspace_id, marker, **{"plan-only": True})
    done = api.wait(run_id)
    stamps = done["attributes"]["status-timestamps"]
    return (_parse(stamps["planning-at"]) - _parse(done["attributes"]["created-at"])).total_seconds() * 1000


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _throughput(
    api: Api, server: BenchServer, token: str, terraform: str, directory: Path, workspaces: list[str]
) -> tuple[float, float, dict[str, int]]:
    run_ids = [
        api.queue(workspaces[i % len(workspaces)], 1000 + i, **{"auto-apply": True})[0] for i in range(THROUGHPUT_RUNS)
    ]
    cpu_before = cpu_seconds(server.pids())
    start = time.monotonic()
    with agent(server, token, terraform, directory, "agent-a"), agent(server, token, terraform, directory, "agent-b"):
        finished = [api.wait(run_id, timeout=900) for run_id in run_ids]
    elapsed = time.monotonic() - start
    cpu = cpu_seconds(server.pids()) - cpu_before
    statuses: dict[str, int] = {}
    for found in finished:
        statuses[found["attributes"]["status"]] = statuses.get(found["attributes"]["status"], 0) + 1
    return THROUGHPUT_RUNS / elapsed * 60, cpu / THROUGHPUT_RUNS * 1000, statuses


@contextmanager
def agent(server: BenchServer, token: str, terraform: str, directory: Path, name: str) -> Any:
    """A ``statesman agent`` process for the bench server, stopped on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATESMAN_", "OPENTACO_"))}
    env.update({"STATESMAN_AGENT_TOKEN": token, "TERRAFORM_BIN": terraform, "CHECKPOINT_DISABLE": "1"})
    log = open(directory / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
    command = [sys.executable, "-m", "app.cli.server", "agent", "--url", server.url, "--name", name]
    process = subprocess.Popen(
        [*command, "--poll-interval", str(POLL_SECONDS)],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
