"""Which agent gets which job: pools, organizations, and one job per claim even when agents claim at once."""

from __future__ import annotations

import threading

from flask import Flask

from tests.agent_api.conftest import agent_token, assert_error, caller, queue_run


def _claimed_run(app: Flask, token: str) -> str | None:
    response = caller(app, token).claim()
    assert response.status_code in (200, 204), response.data
    return response.json["run_id"] if response.status_code == 200 else None


def test_a_pool_s_agent_runs_only_its_pool_s_agent_mode_workspaces(runs_app: Flask) -> None:
    pool_p, pool_q = agent_token(runs_app, pool="p"), agent_token(runs_app, pool="q")
    org_wide = agent_token(runs_app)
    remote = queue_run(runs_app, "remote-ws")
    in_p = queue_run(runs_app, "agent-ws", mode="agent", pool="p")
    assert _claimed_run(runs_app, pool_q) is None
    assert _claimed_run(runs_app, pool_p) == in_p
    assert _claimed_run(runs_app, pool_p) is None  # the remote-mode run is not for a pool
    assert _claimed_run(runs_app, org_wide) == remote


def test_an_organization_wide_agent_never_runs_agent_mode_workspaces(runs_app: Flask) -> None:
    agent_token(runs_app, pool="p")
    queue_run(runs_app, "agent-ws", mode="agent", pool="p")
    assert _claimed_run(runs_app, agent_token(runs_app)) is None


def test_an_agent_never_gets_another_organization_s_runs(runs_app: Flask) -> None:
    queue_run(runs_app, org="acme")
    assert _claimed_run(runs_app, agent_token(runs_app, org="globex")) is None


def test_agents_claiming_at_once_get_different_jobs(runs_app: Flask) -> None:
    expected = {queue_run(runs_app, f"ws-{index}") for index in range(3)}
    agents = [agent_token(runs_app) for _ in range(4)]
    claimed: list[str | None] = []
    start = threading.Barrier(len(agents))

    def claim(token: str) -> None:
        start.wait()
        claimed.append(_claimed_run(runs_app, token))

    threads = [threading.Thread(target=claim, args=(token,)) for token in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [run for run in claimed if run is not None]
    assert sorted(won) == sorted(expected) and claimed.count(None) == 1


def test_of_two_agents_claiming_one_job_one_gets_it_and_the_other_204(runs_app: Flask) -> None:
    run_id = queue_run(runs_app)
    agents = [agent_token(runs_app), agent_token(runs_app)]
    claimed: list[str | None] = []
    start = threading.Barrier(2)

    def claim(token: str) -> None:
        start.wait()
        claimed.append(_claimed_run(runs_app, token))

    threads = [threading.Thread(target=claim, args=(token,)) for token in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed, key=str) == sorted([run_id, None], key=str)


def test_a_claim_names_the_agent(runs_app: Flask) -> None:
    agent = caller(runs_app, agent_token(runs_app))
    assert_error(agent.post("jobs/claim", {}), 400, "agent")
    assert_error(agent.post("jobs/claim", {"agent": "x" * 256}), 400, "agent")
    assert_error(agent.post("jobs/claim", raw=b"{"), 400, "JSON")
