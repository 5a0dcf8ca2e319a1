"""A job's life through the agent API: claim, configuration, state, logs, saved plan, JSON plan, finish; and the
lease that binds every job endpoint to the agent that claimed it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Flask

from app.core.clock import utcnow
from app.extensions import db
from app.models import Run, StateVersion
from app.repositories import runs
from tests.agent_api.conftest import (
    Guard,
    add_variable,
    agent_token,
    assert_error,
    caller,
    queue_run,
    tarball,
)

STATE = json.dumps(
    {"version": 4, "terraform_version": "1.0.3", "serial": 1, "lineage": "l-1", "outputs": {}, "resources": []}
).encode()
PLAN_JSON = json.dumps(
    {"format_version": "1.0", "resource_changes": [{"address": "null_resource.a", "change": {"actions": ["create"]}}]}
).encode()


def _run(app: Flask, run_id: str) -> Run:
    with app.app_context():
        found = runs.get_run(run_id)
        assert found is not None
        db.session.expunge(found)
        return found


def _claim(app: Flask, token: str) -> dict[str, Any]:
    response = caller(app, token).claim()
    assert response.status_code == 200, response.data
    return dict(response.json)


def test_a_run_is_planned_and_applied_through_the_agent_api(runs_app: Flask) -> None:
    archive = tarball()
    run_id = queue_run(runs_app, archive=archive)
    agent = caller(runs_app, agent_token(runs_app))
    job = _claim(runs_app, agent.token or "")
    lease = job["lease_id"]
    assert job["run_id"] == run_id and job["phase"] == "plan"
    assert job["lease_seconds"] == 30 and job["heartbeat_seconds"] == 10 and job["timeout_seconds"] == 600
    assert job["workspace"] == "prod" and job["organization"] == "acme" and job["plan_only"] is False

    configuration = agent.get(f"jobs/{lease}/configuration")
    assert configuration.status_code == 200 and configuration.data == archive
    assert agent.get(f"jobs/{lease}/state").status_code == 204  # no state yet
    assert agent.post(f"jobs/{lease}/heartbeat").json == {"cancel": False, "force_cancel": False, "lease_seconds": 30}
    assert agent.post(f"jobs/{lease}/logs", raw=b"Terraform v1.0.3\nPlan: 1 to add\n").status_code == 204
    assert agent.put(f"jobs/{lease}/plan-file", b"saved plan").status_code == 204
    assert agent.put(f"jobs/{lease}/plan-json", PLAN_JSON).status_code == 204
    finished = agent.post(f"jobs/{lease}/finish", {"outcome": "finished", "error": None})
    assert finished.json == {"run_id": run_id, "status": "planned"}
    assert _run(runs_app, run_id).resource_additions == 1
    assert_error(agent.post(f"jobs/{lease}/heartbeat"), 409, "lease")  # the plan's lease ended with it

    with runs_app.app_context():
        run = runs.get_run(run_id)
        assert run is not None
        runs.apply_run(Guard(run.workspace), run)
        assert runs.read_log(run, "plan", 0, 1000) == b"\x02Terraform v1.0.3\nPlan: 1 to add\n\x03"
    apply = _claim(runs_app, agent.token or "")
    lease = apply["lease_id"]
    assert apply["phase"] == "apply" and apply["run_id"] == run_id
    assert agent.get(f"jobs/{lease}/plan-file").data == b"saved plan"
    stored = agent.put(f"jobs/{lease}/state", STATE)
    assert stored.status_code == 200 and stored.json["serial"] == 1
    assert agent.get(f"jobs/{lease}/state").data == STATE
    assert agent.post(f"jobs/{lease}/finish", {"outcome": "finished"}).json["status"] == "applied"
    with runs_app.app_context():
        version = db.session.get(StateVersion, stored.json["state_version_id"])
        assert version is not None and version.run_id == run_id


def test_the_job_carries_the_workspace_s_variables_revealed_and_the_run_s(runs_app: Flask) -> None:
    add_variable(runs_app, "prod", "region", "eu-west-1")
    add_variable(runs_app, "prod", "password", "s3cret", sensitive=True)
    add_variable(runs_app, "prod", "AWS_SECRET_ACCESS_KEY", "k3y", category="env", sensitive=True)
    add_variable(runs_app, "prod", "tags", '{a = "b"}', hcl=True)
    queue_run(runs_app, variables=(("region", '"us-east-1"'),))
    job = _claim(runs_app, agent_token(runs_app))
    found = {(v["category"], v["key"]): v for v in job["variables"]}
    assert found[("terraform", "password")] == {
        "key": "password",
        "value": "s3cret",
        "category": "terraform",
        "hcl": False,
        "sensitive": True,
    }
    assert found[("env", "AWS_SECRET_ACCESS_KEY")]["value"] == "k3y"
    assert found[("terraform", "tags")]["hcl"] is True
    # The run's own variable replaces the workspace's of the same key, as an HCL value.
    assert found[("terraform", "region")] == {
        "key": "region",
        "value": '"us-east-1"',
        "category": "terraform",
        "hcl": True,
        "sensitive": False,
    }
    assert len(job["variables"]) == 4


def test_a_lease_works_only_for_the_token_that_claimed_it(runs_app: Flask) -> None:
    queue_run(runs_app)
    lease = _claim(runs_app, agent_token(runs_app))["lease_id"]
    other_org = caller(runs_app, agent_token(runs_app, org="globex"))
    same_org_other_token = caller(runs_app, agent_token(runs_app))
    for intruder in (other_org, same_org_other_token):
        assert_error(intruder.get(f"jobs/{lease}/configuration"), 404)
        assert_error(intruder.post(f"jobs/{lease}/heartbeat"), 404)
        assert_error(intruder.put(f"jobs/{lease}/state", STATE), 404)
        assert_error(intruder.post(f"jobs/{lease}/finish", {"outcome": "errored"}), 404)


def test_an_unknown_expired_or_force_canceled_lease_is_409(runs_app: Flask) -> None:
    token = agent_token(runs_app)
    agent = caller(runs_app, token)
    assert_error(agent.post("jobs/no-such-lease/heartbeat"), 409, "lease")

    expired_run = queue_run(runs_app, "expired")
    lease = _claim(runs_app, token)["lease_id"]
    with runs_app.app_context():
        db.session.execute(
            db.update(Run).where(Run.id == expired_run).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert_error(agent.post(f"jobs/{lease}/logs", raw=b"late\n"), 409, "lease")
    assert _run(runs_app, expired_run).status == "errored"

    canceled_run = queue_run(runs_app, "canceled")
    lease = _claim(runs_app, token)["lease_id"]
    with runs_app.app_context():
        run = runs.get_run(canceled_run)
        assert run is not None
        runs.cancel_run(Guard(run.workspace), run)
    assert agent.post(f"jobs/{lease}/heartbeat").json["cancel"] is True  # a cancel: the agent interrupts Terraform
    with runs_app.app_context():
        run = runs.get_run(canceled_run)
        assert run is not None
        runs.force_cancel_run(Guard(run.workspace), run)
    assert_error(agent.post(f"jobs/{lease}/heartbeat"), 409, "lease")
    assert_error(agent.put(f"jobs/{lease}/plan-file", b"plan"), 409)


def test_a_failed_plan_is_reported_with_its_error(runs_app: Flask) -> None:
    run_id = queue_run(runs_app)
    agent = caller(runs_app, agent_token(runs_app))
    lease = _claim(runs_app, agent.token or "")["lease_id"]
    assert_error(agent.post(f"jobs/{lease}/finish", {"outcome": "done"}), 400, "outcome")
    assert_error(agent.post(f"jobs/{lease}/finish", {"outcome": "errored", "error": 7}), 400, "error")
    assert_error(agent.post(f"jobs/{lease}/finish", raw=b"[1]"), 400, "JSON object")
    response = agent.post(f"jobs/{lease}/finish", {"outcome": "errored", "error": "terraform plan failed (1)"})
    assert response.json["status"] == "errored"
    assert _run(runs_app, run_id).error_message == "terraform plan failed (1)"


def test_bodies_are_bounded(make_app) -> None:
    app = make_app(runs_enabled=True, max_state_size=1024)
    queue_run(app)
    agent = caller(app, agent_token(app))
    lease = _claim(app, agent.token or "")["lease_id"]
    assert_error(agent.post(f"jobs/{lease}/logs", raw=b"x" * (1024 * 1024 + 1)), 413)
    assert agent.post(f"jobs/{lease}/logs", raw=b"x" * (1024 * 1024)).status_code == 204
    assert_error(agent.put(f"jobs/{lease}/plan-file", b"p" * 1025), 413)
    assert_error(agent.put(f"jobs/{lease}/plan-json", b" " * 1025), 413)
    assert_error(agent.put(f"jobs/{lease}/plan-json", b"not json"), 400, "JSON")


def test_a_state_that_is_not_one_is_refused(runs_app: Flask) -> None:
    run_id = queue_run(runs_app, auto_apply=True)
    agent = caller(runs_app, agent_token(runs_app))
    lease = _claim(runs_app, agent.token or "")["lease_id"]
    assert_error(agent.put(f"jobs/{lease}/state", STATE), 409, "plan")  # the plan phase writes no state
    agent.put(f"jobs/{lease}/plan-file", b"plan")
    agent.put(f"jobs/{lease}/plan-json", PLAN_JSON)
    assert agent.post(f"jobs/{lease}/finish", {"outcome": "finished"}).json["status"] == "apply_queued"
    lease = _claim(runs_app, agent.token or "")["lease_id"]
    assert_error(agent.put(f"jobs/{lease}/state", b"{not a state"), 400)
    assert _run(runs_app, run_id).status == "applying"
