"""Fixtures for the agent API through the Flask test client: agent tokens, queued runs, a client per agent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.extensions import db
from app.models import Workspace
from app.repositories import agent_pools, configuration_versions, orgs, runs, tokens, variables, workspaces
from tests.factories import bearer
from tests.run_factories import Guard, tarball

PREFIX = "/api/agent/v1"


@dataclass
class AgentCaller:
    """The agent API as one agent token calls it."""

    client: FlaskClient
    token: str | None
    name: str = "agent-1"

    def headers(self) -> dict[str, str]:
        return bearer(self.token) if self.token else {}

    def claim(self) -> TestResponse:
        return self.post("jobs/claim", {"agent": self.name})

    def post(self, path: str, body: Any = None, raw: bytes | None = None) -> TestResponse:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        return self.client.post(f"{PREFIX}/{path}", data=data, headers=self.headers())

    def get(self, path: str) -> TestResponse:
        return self.client.get(f"{PREFIX}/{path}", headers=self.headers())

    def put(self, path: str, data: bytes) -> TestResponse:
        return self.client.put(f"{PREFIX}/{path}", data=data, headers=self.headers())


@pytest.fixture
def runs_app(make_app: Any) -> Flask:
    """An app with remote runs enabled."""
    application: Flask = make_app(runs_enabled=True, run_lease_seconds=30, run_timeout_seconds=600)
    return application


def agent_token(app: Flask, org: str = "acme", pool: str | None = None) -> str:
    """An agent token of ``org`` (organization-wide, or limited to the pool named ``pool``, created if missing)."""
    with app.app_context():
        organization = orgs.get_org(org) or orgs.create_org(org)
        found = None
        if pool is not None:
            found = agent_pools.get_pool(organization, pool) or agent_pools.create_pool(organization, pool, "test")
        _, secret = tokens.create_token(organization, None, "test", kind="agent", agent_pool=found)
        return secret


def caller(app: Flask, token: str | None, name: str = "agent-1") -> AgentCaller:
    """A test client calling the agent API with ``token``."""
    return AgentCaller(app.test_client(), token, name)


def queue_run(
    app: Flask,
    workspace: str = "prod",
    *,
    org: str = "acme",
    mode: str = "remote",
    pool: str | None = None,
    archive: bytes | None = None,
    **options: Any,
) -> str:
    """Queue a run in ``workspace`` (created, in execution ``mode``, in ``pool`` for agent mode); its id."""
    with app.app_context():
        found = ensure_workspace(org, workspace, mode, pool)
        guard = Guard(found)
        version = configuration_versions.create_configuration_version(guard)
        configuration_versions.receive_archive(version, [archive or tarball()], 1 << 20)
        return runs.create_run(guard, version, runs.RunOptions(**options)).id


def ensure_workspace(org: str, name: str, mode: str | None = None, pool: str | None = None) -> Workspace:
    """Workspace ``name`` of ``org`` (both created if missing), set to execution ``mode`` when given."""
    organization = orgs.get_org(org) or orgs.create_org(org)
    found = workspaces.get_workspace(organization, name) or workspaces.create_workspace(
        organization, name, created_by="test"
    )
    if mode is not None:
        found.execution_mode = mode
    if pool is not None:
        found.agent_pool_id = agent_pools.require_pool(organization, pool).id
    db.session.commit()
    return found


def add_variable(app: Flask, workspace: str, key: str, value: str, org: str = "acme", **kind: Any) -> None:
    """A workspace variable (``category``, ``hcl``, ``sensitive`` as keywords)."""
    with app.app_context():
        found = ensure_workspace(org, workspace, "remote")
        variables.create_variable(
            Guard(found), key=key, value=value, category=kind.pop("category", "terraform"), **kind
        )


def assert_error(response: TestResponse, status: int, *words: str) -> None:
    """A JSON:API error document with ``status`` whose detail mentions ``words``."""
    assert response.status_code == status, response.data
    assert response.mimetype == "application/vnd.api+json"
    error = response.json["errors"][0]
    assert error["status"] == str(status) and error["title"] and error["detail"]
    for word in words:
        assert word in error["detail"], error["detail"]
