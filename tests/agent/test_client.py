"""The agent's HTTP client against the real agent API: what each refusal means to the agent."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from app.agent.client import AgentApiError, AgentClient, LeaseLost, Refused
from app.repositories import orgs, tokens
from tests.agent_api.conftest import agent_token, queue_run, tarball
from tests.factories import make_token


def test_a_job_is_claimed_downloaded_and_finished(runs_app: Flask, served: str, tmp_path: Path) -> None:
    archive = tarball()
    run_id = queue_run(runs_app, archive=archive)
    client = AgentClient(served, agent_token(runs_app))
    job = client.claim("a1")
    assert job is not None and job["run_id"] == run_id and client.claim("a1") is None
    lease = job["lease_id"]
    assert client.download(lease, "configuration", tmp_path / "c.tar.gz")
    assert (tmp_path / "c.tar.gz").read_bytes() == archive
    assert not client.download(lease, "state", tmp_path / "state")  # 204: no state yet
    assert client.heartbeat(lease)["cancel"] is False
    client.send_log(lease, b"hello\n")
    client.finish(lease, "errored", "stopped by a test")
    with pytest.raises(LeaseLost):
        client.heartbeat(lease)


def test_bad_tokens_and_other_tokens_are_refused(runs_app: Flask, served: str) -> None:
    with pytest.raises(Refused) as unknown:
        AgentClient(served, "stm_unknown").claim("a1")
    assert unknown.value.status == 401
    with pytest.raises(Refused) as user:
        AgentClient(served, make_token(runs_app)).claim("a1")
    assert user.value.status == 403 and "agent tokens only" in str(user.value)
    secret = agent_token(runs_app)
    with runs_app.app_context():
        org = orgs.get_org("acme")
        assert org is not None
        for token in tokens.list_agent_tokens(org):
            tokens.revoke_token(token.id, "test")
    with pytest.raises(Refused):
        AgentClient(served, secret).claim("a1")


def test_another_agent_s_lease_is_a_lost_lease_and_a_bad_request_an_error(runs_app: Flask, served: str) -> None:
    queue_run(runs_app)
    owner = AgentClient(served, agent_token(runs_app))
    job = owner.claim("a1")
    assert job is not None
    with pytest.raises(LeaseLost) as lost:
        AgentClient(served, agent_token(runs_app)).heartbeat(job["lease_id"])
    assert lost.value.status == 404
    with pytest.raises(AgentApiError) as invalid:
        owner.finish(job["lease_id"], "done")
    assert invalid.value.status == 400 and not isinstance(invalid.value, LeaseLost)
