"""Workspace execution modes, ``operations`` and agent pools, and what ``RUNS_ENABLED`` turns on or keeps off."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_token
from tests.tfc_api.conftest import Api, assert_error, run_body, uploaded_version


@pytest.fixture
def runs_app(make_app: Any) -> Flask:
    application: Flask = make_app(runs_enabled=True)
    return application


@pytest.fixture
def runs_api(runs_app: Flask) -> Api:
    return Api(runs_app.test_client(), make_token(runs_app))


def pool(api: Api, name: str, org: str = "acme") -> str:
    response = api.post(
        f"organizations/{org}/agent-pools", {"data": {"type": "agent-pools", "attributes": {"name": name}}}
    )
    assert response.status_code == 201, response.json
    return str(response.json["data"]["id"])


def patch(api: Api, workspace: dict[str, Any], attributes: dict[str, Any], **relationships: Any) -> Any:
    data: dict[str, Any] = {"type": "workspaces", "attributes": attributes}
    if relationships:
        data["relationships"] = relationships
    return api.patch(f"workspaces/{workspace['id']}", {"data": data})


def mode_of(api: Api, workspace: dict[str, Any]) -> tuple[str, bool, str | None]:
    data = api.get(f"workspaces/{workspace['id']}").json["data"]
    pool_ref = data["relationships"]["agent-pool"]["data"]
    assert data["attributes"]["agent-pool-id"] == (pool_ref["id"] if pool_ref else None)
    return data["attributes"]["execution-mode"], data["attributes"]["operations"], pool_ref and pool_ref["id"]


def test_remote_and_local_and_what_operations_means(runs_api: Api) -> None:
    workspace = runs_api.create_workspace("prod", **{"execution-mode": "remote"})
    assert mode_of(runs_api, workspace) == ("remote", True, None)
    assert patch(runs_api, workspace, {"operations": False}).status_code == 200
    assert mode_of(runs_api, workspace) == ("local", False, None)
    assert patch(runs_api, workspace, {"operations": True}).status_code == 200
    assert mode_of(runs_api, workspace) == ("remote", True, None)
    assert_error(patch(runs_api, workspace, {"operations": True, "execution-mode": "local"}), 422, "contradicts")
    assert_error(patch(runs_api, workspace, {"execution-mode": "cloud"}), 422, "agent")
    created = runs_api.create_workspace("old-client", operations=True)  # how older SDKs ask for remote runs
    assert mode_of(runs_api, created) == ("remote", True, None)


def test_agent_mode_needs_a_pool_of_the_same_organization(runs_api: Api, runs_app: Flask, client: FlaskClient) -> None:
    builders = pool(runs_api, "builders")
    mallory = Api(runs_app.test_client(), make_token(runs_app, "other", "mallory"))
    theirs = pool(mallory, "theirs", org="other")
    refused = runs_api.post(
        "organizations/acme/workspaces", {"data": {"attributes": {"name": "a", "execution-mode": "agent"}}}
    )
    assert_error(refused, 422, "agent pool")
    assert refused.json["errors"][0]["source"] == {"pointer": "/data/attributes/agent-pool-id"}
    workspace = runs_api.create_workspace("prod")
    relationship = {"data": {"type": "agent-pools", "id": builders}}
    assert_error(patch(runs_api, workspace, {"execution-mode": "agent"}), 422, "agent pool")
    foreign = {"data": {"type": "agent-pools", "id": theirs}}
    assert_error(patch(runs_api, workspace, {"execution-mode": "agent"}, **{"agent-pool": foreign}), 422, "not found")
    assert_error(patch(runs_api, workspace, {"execution-mode": "remote", "agent-pool-id": builders}), 422, "only")
    assert patch(runs_api, workspace, {"execution-mode": "agent"}, **{"agent-pool": relationship}).status_code == 200
    assert mode_of(runs_api, workspace) == ("agent", True, builders)  # operations: it executes remotely
    assert patch(runs_api, workspace, {"auto-apply": True}).status_code == 200  # other settings keep the pool
    assert mode_of(runs_api, workspace) == ("agent", True, builders)
    assert patch(runs_api, workspace, {"execution-mode": "remote"}).status_code == 200
    assert mode_of(runs_api, workspace) == ("remote", True, None)
    by_attribute = runs_api.create_workspace("ci", **{"execution-mode": "agent", "agent-pool-id": "builders"})
    assert mode_of(runs_api, by_attribute) == ("agent", True, builders)


def test_with_runs_enabled_the_server_says_so(runs_api: Api) -> None:
    entitlements = runs_api.get("organizations/acme/entitlement-set").json["data"]["attributes"]
    assert entitlements["operations"] is True and entitlements["agents"] is True
    assert "remote runs" in runs_api.get("motd").json["msg"]
    workspace = runs_api.create_workspace("prod", **{"execution-mode": "remote"})
    permissions = workspace["attributes"]["permissions"]
    assert permissions["can-queue-run"] and permissions["can-queue-apply"] and permissions["can-queue-destroy"]
    assert workspace["attributes"]["structured-run-output-enabled"] is False


def test_with_runs_disabled_everything_stays_local(runs_api: Api, api: Api) -> None:
    """``RUNS_ENABLED=false`` (the ``api`` fixture's server): a workspace set to remote earlier still shows local."""
    workspace = runs_api.create_workspace("prod", **{"execution-mode": "remote"})
    version = uploaded_version(runs_api, workspace)
    shown = api.get(f"workspaces/{workspace['id']}").json["data"]
    assert shown["attributes"]["execution-mode"] == "local" and shown["attributes"]["operations"] is False
    assert shown["attributes"]["permissions"]["can-queue-run"] is False
    assert shown["relationships"]["current-run"]["data"] is None
    assert api.get("organizations/acme/entitlement-set").json["data"]["attributes"]["operations"] is False
    assert "local execution" in api.get("motd").json["msg"]
    assert_error(patch(api, workspace, {"execution-mode": "remote"}), 422, "RUNS_ENABLED")
    assert_error(patch(api, workspace, {"operations": True}), 422, "RUNS_ENABLED")
    assert patch(api, workspace, {"operations": False}).status_code == 200
    assert_error(api.post("runs", run_body(workspace["id"], version)), 409, "RUNS_ENABLED")
