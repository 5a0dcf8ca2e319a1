"""Runs, plans and applies through the TFE API, as Terraform's remote backend and cloud block drive them.

The agent's side is played by calling the run repository directly (claim, log, JSON plan, finish), so every test
here runs on every metadata database without a Terraform binary.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth.signed_urls import path_token
from app.repositories import orgs, runs
from app.repositories.runs import AgentIdentity
from config import Config
from tests.factories import make_token
from tests.tfc_api.conftest import Api, assert_error, run_body, uploaded_version

STX, ETX = b"\x02", b"\x03"


@pytest.fixture
def config(config: Config) -> Config:
    """Remote runs on."""
    return dataclasses.replace(config, runs_enabled=True)


@pytest.fixture
def remote(api: Api) -> dict[str, Any]:
    """Workspace ``prod`` in acme, executing remotely."""
    return api.create_workspace("prod", **{"execution-mode": "remote", "terraform-version": "1.0.3"})


def start_run(api: Api, workspace: dict[str, Any], *, speculative: bool = False, **attributes: Any) -> dict[str, Any]:
    version = uploaded_version(api, workspace, speculative=speculative)
    response = api.post("runs", run_body(workspace["id"], version, **attributes))
    assert response.status_code == 201, response.json
    data: dict[str, Any] = response.json["data"]
    return data


def agent(app: Flask, name: str = "a1") -> AgentIdentity:
    org = orgs.get_org("acme")
    assert org is not None
    return AgentIdentity(org_id=org.id, token_id=f"at-{name}", pool_id=None, name=name)


def plan_json(additions: int) -> bytes:
    changes = [{"address": f"null_resource.r{i}", "change": {"actions": ["create"]}} for i in range(additions)]
    return json.dumps({"format_version": "1.0", "resource_changes": changes}).encode()


def run_plan(app: Flask, run_id: str, additions: int = 1, log: bytes = b"Plan: 1 to add, 0 to change.\n") -> None:
    """An agent claims the run's plan, logs, stores the JSON plan and finishes it."""
    with app.app_context():
        job = runs.claim_job(agent(app))
        assert job is not None and job.run.id == run_id and job.phase == "plan"
        runs.append_log(job, log)
        runs.store_plan_file(job, [b"saved-plan"], 1 << 20)
        runs.store_plan_json(job, plan_json(additions))
        runs.finish_phase(job, "finished")


def run_apply(app: Flask, run_id: str, log: bytes = b"Apply complete!\n") -> None:
    with app.app_context():
        job = runs.claim_job(agent(app))
        assert job is not None and job.run.id == run_id and job.phase == "apply"
        runs.append_log(job, log)
        runs.finish_phase(job, "finished")


def claim(app: Flask, run_id: str) -> None:
    with app.app_context():
        job = runs.claim_job(agent(app))
        assert job is not None and job.run.id == run_id


def read_log(client: FlaskClient, url: str, chunk: int = 5, token: str | None = None) -> bytes:
    """Read a log URL as go-tfe's LogReader does: the query string replaced by limit/offset on every read."""
    path = urlsplit(url).path
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    served, offset = b"", 0
    for _ in range(1000):
        response = client.get(f"{path}?limit={chunk}&offset={offset}", headers=headers)
        assert response.status_code == 200, response.data
        assert len(response.data) <= chunk
        if not response.data:
            break
        served += response.data
        offset += len(response.data)
    return served


def status_of(api: Api, run_id: str) -> str:
    return str(api.get(f"runs/{run_id}").json["data"]["attributes"]["status"])


def test_a_speculative_plan_streams_its_log_and_ends_planned_and_finished(
    app: Flask, client: FlaskClient, api: Api, remote: dict[str, Any]
) -> None:
    run = start_run(api, remote, speculative=True, message="from the CLI", refresh=True)
    attributes = run["attributes"]
    assert run["type"] == "runs" and run["id"].startswith("run-")
    assert attributes["status"] == "plan_queued" and "plan-queued-at" in attributes["status-timestamps"]
    assert attributes["plan-only"] is True  # the configuration version is speculative: `terraform plan`
    assert attributes["source"] == "tfe-api" and attributes["trigger-reason"] == "manual"
    assert attributes["message"] == "from the CLI" and attributes["refresh"] is True
    assert attributes["actions"] == {
        "is-cancelable": True,
        "is-confirmable": False,
        "is-discardable": False,
        "is-force-cancelable": False,
    }
    assert attributes["permissions"]["can-apply"] is True and attributes["permissions"]["can-force-execute"] is False
    assert attributes["created-at"].endswith("Z") and attributes["variables"] == []
    relationships = run["relationships"]
    assert relationships["workspace"]["data"] == {"id": remote["id"], "type": "workspaces"}
    assert relationships["cost-estimate"]["data"] is None and relationships["policy-checks"]["data"] == []
    assert relationships["task-stages"]["data"] == []
    plan_id = relationships["plan"]["data"]["id"]

    shown = api.get(f"runs/{run['id']}?include=workspace,plan")
    included = {item["type"]: item for item in shown.json["included"]}
    assert included["workspaces"]["relationships"]["current-run"]["data"]["id"] == run["id"]
    assert included["workspaces"]["attributes"]["structured-run-output-enabled"] is False
    assert included["workspaces"]["attributes"]["locked"] is False  # a plan-only run never takes the lock
    plan = included["plans"]
    assert plan["id"] == plan_id and plan["attributes"]["status"] == "queued"
    log_url = plan["attributes"]["log-read-url"]
    assert log_url.startswith(f"http://localhost/api/v2/plans/{plan_id}/logs/")
    assert read_log(client, log_url) == STX  # nothing logged yet, and not done

    claim_and_log = b"Terraform v1.0.3\nPlan: 1 to add, 0 to change, 0 to destroy.\n"
    with app.app_context():
        job = runs.claim_job(agent(app))
        assert job is not None
        runs.append_log(job, claim_and_log)
    assert status_of(api, run["id"]) == "planning"
    assert read_log(client, log_url) == STX + claim_and_log  # no ETX while the plan runs
    with app.app_context():
        job = runs.claim_job(agent(app, "a2"))
        assert job is None
        found = runs.get_run(run["id"])
        assert found is not None and found.lease_id is not None
        leased = runs.Job(found, "plan", found.lease_id)
        runs.store_plan_json(leased, plan_json(1))
        runs.finish_phase(leased, "finished")

    assert status_of(api, run["id"]) == "planned_and_finished"
    assert read_log(client, log_url, chunk=7) == STX + claim_and_log + ETX
    assert read_log(client, log_url, chunk=4096) == STX + claim_and_log + ETX
    plan = api.get(f"plans/{plan_id}").json["data"]
    assert plan["type"] == "plans" and plan["attributes"]["status"] == "finished"
    assert plan["attributes"]["has-changes"] is True and plan["attributes"]["resource-additions"] == 1
    assert {"queued-at", "started-at", "finished-at"} <= set(plan["attributes"]["status-timestamps"])
    output = api.get(f"plans/{plan_id}/json-output")
    assert output.status_code == 200 and output.json["resource_changes"][0]["address"] == "null_resource.r0"


def test_a_run_that_may_apply_holds_the_lock_until_applied(
    app: Flask, client: FlaskClient, api: Api, remote: dict[str, Any]
) -> None:
    run = start_run(api, remote)
    assert run["attributes"]["plan-only"] is False and run["attributes"]["status"] == "plan_queued"
    workspace = api.get(f"workspaces/{remote['id']}").json["data"]
    assert workspace["attributes"]["locked"] is True
    assert workspace["relationships"]["locked-by"]["data"] == {"id": run["id"], "type": "runs"}
    assert workspace["relationships"]["current-run"]["data"]["id"] == run["id"]
    assert_error(api.unlock(remote["id"]), 409, "locked by")
    assert_error(api.post(f"runs/{run['id']}/actions/apply"), 409, "planned")

    run_plan(app, run["id"])
    shown = api.get(f"runs/{run['id']}").json["data"]["attributes"]
    assert shown["status"] == "planned" and shown["has-changes"] is True
    assert shown["actions"]["is-confirmable"] and shown["actions"]["is-discardable"]
    confirmed = api.post(f"runs/{run['id']}/actions/apply", {"comment": "looks good"})
    assert confirmed.status_code == 202 and confirmed.data == b""
    assert status_of(api, run["id"]) == "apply_queued"
    assert_error(api.post(f"runs/{run['id']}/actions/apply"), 409)

    apply_id = api.get(f"runs/{run['id']}").json["data"]["relationships"]["apply"]["data"]["id"]
    apply = api.get(f"applies/{apply_id}").json["data"]
    assert apply["type"] == "applies" and apply["attributes"]["status"] == "queued"
    run_apply(app, run["id"], b"header 1\nheader 2\nheader 3\nApply complete! Resources: 1 added.\n")
    assert status_of(api, run["id"]) == "applied"
    apply = api.get(f"applies/{apply_id}").json["data"]["attributes"]
    assert apply["status"] == "finished" and {"queued-at", "started-at", "finished-at"} <= set(
        apply["status-timestamps"]
    )
    log = read_log(client, apply["log-read-url"], chunk=16)
    assert log.startswith(STX + b"header 1\n") and log.endswith(b"1 added.\n" + ETX)
    workspace = api.get(f"workspaces/{remote['id']}").json["data"]
    assert workspace["attributes"]["locked"] is False
    assert workspace["relationships"]["locked-by"]["data"] is None


def test_auto_apply_runs_apply_without_confirmation(app: Flask, api: Api, remote: dict[str, Any]) -> None:
    run = start_run(api, remote, **{"auto-apply": True})
    assert run["attributes"]["auto-apply"] is True
    run_plan(app, run["id"])
    assert status_of(api, run["id"]) == "apply_queued"
    run_apply(app, run["id"])
    assert status_of(api, run["id"]) == "applied"


def test_the_workspace_auto_apply_setting_applies_when_the_run_does_not_say(
    app: Flask, api: Api, remote: dict[str, Any]
) -> None:
    """Terraform 1.0.3 sends no auto-apply: the workspace's setting decides, as TFE's does."""
    api.patch(f"workspaces/{remote['id']}", {"data": {"attributes": {"auto-apply": True}}})
    run = start_run(api, remote)
    assert run["attributes"]["auto-apply"] is True
    explicit = start_run(api, remote, **{"auto-apply": False})  # the cloud block without -auto-approve
    assert explicit["attributes"]["auto-apply"] is False


def test_a_saved_plan_waits_for_confirmation_and_never_auto_applies(
    app: Flask, api: Api, remote: dict[str, Any]
) -> None:
    """``terraform plan -out`` with the cloud block sends save-plan; ``terraform apply <file>`` confirms later."""
    run = start_run(api, remote, **{"save-plan": True, "auto-apply": True})
    assert run["attributes"]["plan-only"] is False and run["attributes"]["auto-apply"] is False
    run_plan(app, run["id"])
    attributes = api.get(f"runs/{run['id']}").json["data"]["attributes"]
    assert attributes["status"] == "planned" and attributes["actions"]["is-confirmable"] is True
    response = api.post("runs", run_body(remote["id"], None, **{"save-plan": True, "plan-only": True}))
    assert_error(response, 422, "save-plan")


def test_discard_and_its_conflicts(app: Flask, api: Api, remote: dict[str, Any]) -> None:
    run = start_run(api, remote)
    assert_error(api.post(f"runs/{run['id']}/actions/discard"), 409, "planned")
    run_plan(app, run["id"])
    assert api.post(f"runs/{run['id']}/actions/discard", {"comment": "not now"}).status_code == 202
    assert status_of(api, run["id"]) == "discarded"
    assert_error(api.post(f"runs/{run['id']}/actions/discard"), 409)
    assert_error(api.post(f"runs/{run['id']}/actions/apply"), 409)
    assert api.get(f"workspaces/{remote['id']}").json["data"]["attributes"]["locked"] is False


def test_cancel_a_waiting_run_at_once_and_an_executing_one_by_request(
    app: Flask, client: FlaskClient, api: Api, remote: dict[str, Any]
) -> None:
    first = start_run(api, remote)
    second = start_run(api, remote)
    assert second["attributes"]["status"] == "pending"
    assert api.post(f"runs/{second['id']}/actions/cancel").status_code == 202
    assert status_of(api, second["id"]) == "canceled"
    assert_error(api.post(f"runs/{second['id']}/actions/cancel"), 409)
    assert_error(api.post(f"runs/{first['id']}/actions/force-cancel"), 409, "force-cancel")

    claim(app, first["id"])
    assert api.post(f"runs/{first['id']}/actions/cancel", {"comment": "stop"}).status_code == 202
    attributes = api.get(f"runs/{first['id']}").json["data"]["attributes"]
    assert attributes["status"] == "planning"  # the agent interrupts Terraform; the run ends when it stops
    assert attributes["actions"]["is-cancelable"] is False and attributes["actions"]["is-force-cancelable"] is True
    assert attributes["force-cancel-available-at"].endswith("Z")
    assert_error(api.post(f"runs/{first['id']}/actions/cancel"), 409, "already requested")
    assert api.post(f"runs/{first['id']}/actions/force-cancel").status_code == 202
    assert status_of(api, first["id"]) == "canceled"
    plan = api.get(f"plans/{first['relationships']['plan']['data']['id']}")
    assert plan.json["data"]["attributes"]["status"] == "canceled"
    assert read_log(client, plan.json["data"]["attributes"]["log-read-url"]) == STX + ETX  # the reader stops
    assert api.get(f"workspaces/{remote['id']}").json["data"]["attributes"]["locked"] is False


def test_a_run_waiting_behind_a_user_lock_stays_pending(app: Flask, api: Api, remote: dict[str, Any]) -> None:
    assert api.lock(remote["id"]).status_code == 200
    run = start_run(api, remote)
    assert run["attributes"]["status"] == "pending"
    workspace = api.get(f"workspaces/{remote['id']}").json["data"]
    assert workspace["relationships"]["current-run"]["data"]["id"] == run["id"]
    assert workspace["relationships"]["locked-by"]["data"]["type"] == "users"
    assert api.unlock(remote["id"]).status_code == 200
    with app.app_context():
        assert runs.claim_job(agent(app)) is not None  # a claim notices the lock went away
    assert status_of(api, run["id"]) == "planning"


def test_list_runs_newest_first_with_status_filter_and_paging(app: Flask, api: Api, remote: dict[str, Any]) -> None:
    first, second, third = (start_run(api, remote) for _ in range(3))
    listed = api.get(f"workspaces/{remote['id']}/runs").json
    assert [r["id"] for r in listed["data"]] == [third["id"], second["id"], first["id"]]
    assert listed["meta"]["pagination"]["total-count"] == 3
    paged = api.get(f"workspaces/{remote['id']}/runs?page[size]=1&page[number]=2").json
    assert [r["id"] for r in paged["data"]] == [second["id"]] and paged["meta"]["pagination"]["total-pages"] == 3
    pending = api.get(f"workspaces/{remote['id']}/runs?filter[status]=pending").json["data"]
    assert {r["id"] for r in pending} == {second["id"], third["id"]}
    both = api.get(f"workspaces/{remote['id']}/runs?filter[status]=plan_queued,pending").json["data"]
    assert len(both) == 3
    assert api.get(f"workspaces/{remote['id']}/runs?filter[status]=applied").json["data"] == []


def test_the_organization_queue_and_capacity(app: Flask, api: Api, remote: dict[str, Any]) -> None:
    other = api.create_workspace("stage", **{"execution-mode": "remote"})
    executing = start_run(api, remote)
    claim(app, executing["id"])
    queued = start_run(api, other)
    waiting = start_run(api, remote)  # pending behind the executing one: not in the organization's queue
    queue = api.get("organizations/acme/runs/queue").json
    assert [(r["id"], r["attributes"]["position-in-queue"]) for r in queue["data"]] == [
        (executing["id"], 0),
        (queued["id"], 1),
    ]
    assert queue["meta"]["pagination"]["total-count"] == 2
    assert api.get(f"runs/{queued['id']}").json["data"]["attributes"]["position-in-queue"] == 1
    assert api.get(f"runs/{waiting['id']}").json["data"]["attributes"]["position-in-queue"] == 0
    capacity = api.get("organizations/acme/capacity").json["data"]
    assert capacity == {
        "id": "acme",
        "type": "organization-capacity",
        "attributes": {"pending": 1, "running": 1},
    }


def test_run_variables_are_shown_and_the_workspaces_secrets_never(api: Api, remote: dict[str, Any]) -> None:
    api.post(
        f"workspaces/{remote['id']}/vars",
        {"data": {"type": "vars", "attributes": {"key": "secret", "value": "hunter2", "sensitive": True}}},
    )
    run = start_run(api, remote, variables=[{"key": "region", "value": '"eu-west-1"'}])
    assert run["attributes"]["variables"] == [{"key": "region", "value": '"eu-west-1"'}]
    shown = api.get(f"runs/{run['id']}?include=workspace").data
    assert b"hunter2" not in shown and b"eu-west-1" in shown


def test_includes_created_by_and_configuration_version(api: Api, remote: dict[str, Any]) -> None:
    run = start_run(api, remote)
    shown = api.get(f"runs/{run['id']}?include=created_by,configuration_version,apply,bogus").json
    kinds = {item["type"]: item for item in shown["included"]}
    assert set(kinds) == {"users", "configuration-versions", "applies"}
    me = api.get("account/details").json["data"]
    assert kinds["users"]["id"] == me["id"] == shown["data"]["relationships"]["created-by"]["data"]["id"]
    assert kinds["users"]["attributes"]["username"] == "alice"
    assert (
        kinds["configuration-versions"]["id"] == shown["data"]["relationships"]["configuration-version"]["data"]["id"]
    )
    assert "upload-url" not in kinds["configuration-versions"]["attributes"]
    assert "included" not in api.get(f"runs/{run['id']}?include=").json


def test_run_extras_are_empty(api: Api, remote: dict[str, Any]) -> None:
    run = start_run(api, remote)
    for extra in ("run-events", "policy-checks", "task-stages", "cost-estimates"):
        listed = api.get(f"runs/{run['id']}/{extra}")
        assert listed.status_code == 200 and listed.json["data"] == [], extra
    assert api.get(f"runs/{run['id']}/cost-estimate").json == {"data": None}


def test_create_refuses_what_cannot_run(app: Flask, client: FlaskClient, api: Api, remote: dict[str, Any]) -> None:
    version = uploaded_version(api, remote)
    assert_error(api.post("runs", {"data": {"type": "runs", "attributes": {}}}), 400, "workspace")
    assert_error(api.post("runs", run_body("ws-0000000000000000", version)), 404)
    assert_error(api.post("runs", run_body(remote["id"], "cv-0000000000000000")), 404)
    local = api.create_workspace("laptop")
    assert_error(api.post("runs", run_body(local["id"], uploaded_version(api, local))), 409, "execution mode")
    elsewhere = api.create_workspace("stage", **{"execution-mode": "remote"})
    assert_error(api.post("runs", run_body(elsewhere["id"], version)), 404)  # the version is prod's
    pending = api.post(
        f"workspaces/{remote['id']}/configuration-versions", {"data": {"type": "configuration-versions"}}
    ).json["data"]["id"]
    assert_error(api.post("runs", run_body(remote["id"], pending)), 409, "upload")
    refresh_only_destroy = run_body(remote["id"], version, **{"is-destroy": True, "refresh-only": True})
    assert_error(api.post("runs", refresh_only_destroy), 400, "refresh-only")
    assert_error(api.post("runs", run_body(remote["id"], version, variables=[{"key": "x"}])), 422, "variables")
    assert_error(api.post("runs", run_body(remote["id"], version, variables="x=1")), 422, "variables")
    assert_error(api.post("runs", run_body(remote["id"], version, **{"target-addrs": "a"})), 422, "target-addrs")
    assert_error(api.post("runs", run_body(remote["id"], version, **{"terraform-version": "1.5.0"})), 422, "1.0.3")
    # No configuration-version: the workspace's newest, as TFE does (here the one still waiting for its upload).
    assert_error(api.post("runs", run_body(remote["id"], None)), 409, "upload")
    assert_error(
        api.post("runs", run_body(api.create_workspace("empty", **{"execution-mode": "remote"})["id"], None)),
        409,
        "no configuration version",
    )
    newest = uploaded_version(api, remote)
    created = api.post("runs", run_body(remote["id"], None, **{"target-addrs": ["null_resource.a"]}))
    assert created.status_code == 201, created.json
    assert created.json["data"]["relationships"]["configuration-version"]["data"]["id"] == newest
    assert created.json["data"]["attributes"]["target-addrs"] == ["null_resource.a"]


def test_readers_may_look_but_not_act(app: Flask, client: FlaskClient, api: Api, remote: dict[str, Any]) -> None:
    run = start_run(api, remote)
    version = uploaded_version(api, remote)
    reader = Api(client, make_token(app, subject="bob", scope="read-only"))
    assert reader.get(f"runs/{run['id']}").status_code == 200
    assert reader.get(f"runs/{run['id']}").json["data"]["attributes"]["permissions"]["can-apply"] is False
    assert reader.get(f"workspaces/{remote['id']}").json["data"]["attributes"]["permissions"]["can-queue-run"] is False
    assert api.get(f"workspaces/{remote['id']}").json["data"]["attributes"]["permissions"]["can-queue-run"] is True
    assert_error(reader.post("runs", run_body(remote["id"], version)), 403)
    for action in ("apply", "discard", "cancel", "force-cancel"):
        assert_error(reader.post(f"runs/{run['id']}/actions/{action}"), 403)
    assert status_of(api, run["id"]) == "plan_queued"


def test_other_organizations_never_see_a_run(app: Flask, client: FlaskClient, api: Api, remote: dict[str, Any]) -> None:
    run = start_run(api, remote)
    run_plan(app, run["id"])
    plan_id = run["relationships"]["plan"]["data"]["id"]
    apply_id = run["relationships"]["apply"]["data"]["id"]
    version = uploaded_version(api, remote)
    mallory = Api(client, make_token(app, "other", "mallory"))
    nobody = Api(client, make_token(app, subject="nora", role=None))  # a member of acme whose roles allow nothing
    for outsider in (mallory, nobody):
        for path in (
            f"runs/{run['id']}",
            f"runs/{run['id']}/run-events",
            f"runs/{run['id']}/policy-checks",
            f"runs/{run['id']}/task-stages",
            f"runs/{run['id']}/cost-estimates",
            f"runs/{run['id']}/cost-estimate",
            f"plans/{plan_id}",
            f"plans/{plan_id}/json-output",
            f"applies/{apply_id}",
            f"workspaces/{remote['id']}/runs",
        ):
            assert_error(outsider.get(path), 404)
        for action in ("apply", "discard", "cancel", "force-cancel"):
            assert_error(outsider.post(f"runs/{run['id']}/actions/{action}"), 404)
        assert_error(outsider.post("runs", run_body(remote["id"], version)), 404)
    for path in ("organizations/acme/runs/queue", "organizations/acme/capacity"):
        assert_error(mallory.get(path), 404)
    assert nobody.get("organizations/acme/runs/queue").status_code in (403, 404)
    assert status_of(api, run["id"]) == "planned"


def test_a_log_url_is_its_own_grant_and_only_for_its_log(
    app: Flask, client: FlaskClient, api: Api, remote: dict[str, Any]
) -> None:
    run = start_run(api, remote)
    run_plan(app, run["id"], log=b"secret-free log\n")
    plan_id = run["relationships"]["plan"]["data"]["id"]
    apply_id = run["relationships"]["apply"]["data"]["id"]
    url = urlsplit(api.get(f"plans/{plan_id}").json["data"]["attributes"]["log-read-url"]).path
    token = url.rsplit("/", 1)[1]
    assert client.get(url).data == STX + b"secret-free log\n" + ETX  # no Authorization needed
    mallory = make_token(app, "other", "mallory")
    assert read_log(client, url, token=mallory) == STX + b"secret-free log\n" + ETX  # a foreign header is ignored
    assert client.get(f"{url}?offset=3&limit=4").data == b"cret"
    assert client.get(f"{url}?offset=100").data == b""
    assert_error(client.get(f"{url}?offset=-1"), 400)
    assert_error(client.get(f"{url}?limit=x"), 400)
    assert_error(client.get(f"/api/v2/applies/{apply_id}/logs/{token}"), 403)  # another log's grant
    tampered = token[:-1] + ("1" if token.endswith("0") else "0")
    assert_error(client.get(f"/api/v2/plans/{plan_id}/logs/{tampered}"), 403)
    assert_error(client.get(f"/api/v2/plans/{plan_id}/logs/nonsense"), 403)
    with app.app_context():
        expired = path_token("GET", f"plans/{plan_id}/logs", -1)
        unknown = path_token("GET", "plans/plan-0000000000000000/logs", 60)
    assert_error(client.get(f"/api/v2/plans/{plan_id}/logs/{expired}"), 403, "expired")
    assert_error(client.get(f"/api/v2/plans/plan-0000000000000000/logs/{unknown}"), 404)
    assert client.get(f"/tfe/api/v2/plans/{plan_id}/logs/{token}").status_code == 200  # every door


def test_json_output_waits_for_the_plan(app: Flask, api: Api, remote: dict[str, Any]) -> None:
    run = start_run(api, remote)
    plan_id = run["relationships"]["plan"]["data"]["id"]
    assert_error(api.get(f"plans/{plan_id}/json-output"), 404, "not finished")
    outputs_only = Api(api.client, make_token(app, subject="olga", scope="outputs-only"))
    run_plan(app, run["id"])
    assert_error(outputs_only.get(f"plans/{plan_id}/json-output"), 403)
    assert api.get(f"plans/{plan_id}/json-output").json["format_version"] == "1.0"


def test_the_ui_door_hands_out_log_urls_on_the_forwarded_host(make_app: Any, api: Api, remote: dict[str, Any]) -> None:
    """Through ``/internal/tfe/api/v2`` the log URL names the UI's host under ``/tfe/api/v2``, which it passes on."""
    run = start_run(api, remote)
    ui_app = make_app(internal_webhook_secret="webhook-secret")
    ui = Api(ui_app.test_client(), None, prefix="/internal/tfe/api/v2")
    headers = {
        "Authorization": "Bearer webhook-secret",
        "X-User-ID": "alice",
        "X-Org-ID": "acme",
        "X-Forwarded-Host": "ui.example.com",
        "X-Forwarded-Proto": "https",
    }
    shown = ui.get(f"runs/{run['id']}?include=plan", headers=headers)
    assert shown.status_code == 200, shown.json
    url = shown.json["included"][0]["attributes"]["log-read-url"]
    assert url.startswith(f"https://ui.example.com/tfe/api/v2/plans/{run['relationships']['plan']['data']['id']}/logs/")
    assert read_log(ui.client, url) == STX
    assert_error(ui.get(f"runs/{run['id']}", headers={**headers, "X-Org-ID": "other"}), 404)
