"""Fixtures for the management API: a config with the webhook secret, and a stand-in for the web UI's server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from config import Config
from tests.conftest import base_config

SECRET = "webhook-test-secret"
STATE_V1 = {
    "version": 4,
    "terraform_version": "1.0.3",
    "serial": 1,
    "lineage": "lineage-1",
    "outputs": {"greeting": {"value": "hello", "type": "string"}},
    "resources": [{"mode": "managed", "type": "null_resource", "name": "a", "provider": "p", "instances": []}],
}


def state(serial: int, greeting: str = "hello", lineage: str = "lineage-1") -> bytes:
    """A small Terraform state document."""
    document = dict(
        STATE_V1, serial=serial, lineage=lineage, outputs={"greeting": {"value": greeting, "type": "string"}}
    )
    return json.dumps(document).encode()


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    """The base test config with the internal endpoints enabled."""
    return replace(base_config(tmp_path, database_url), internal_webhook_secret=SECRET)


@dataclass
class Ui:
    """Calls ``/internal/api`` the way the web UI's server does (secret, X-User-ID, X-Email, X-Org-ID)."""

    client: FlaskClient
    user: str = "alice"
    email: str | None = "alice@example.com"
    org: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def as_user(self, user: str, email: str | None = None, org: str | None = None) -> Ui:
        """The same UI acting for another person."""
        return Ui(
            self.client, user, email if email is not None else f"{user}@example.com", self.org if org is None else org
        )

    def in_org(self, org: str) -> Ui:
        return Ui(self.client, self.user, self.email, org)

    def headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {SECRET}",
            "X-User-ID": self.user,
            "X-Org-ID": self.org,
            "Content-Type": "application/json",
            "X-Request-ID": "ui-test",
        }
        if self.email is not None:
            headers["X-Email"] = self.email
        headers.update(self.extra)
        return headers

    def call(self, method: str, path: str, body: Any = None, data: bytes | None = None, **kwargs: Any) -> TestResponse:
        payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
        return self.client.open("/internal/api" + path, method=method, data=payload, headers=self.headers(), **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        return self.call("PATCH", path, body, **kwargs)

    def delete(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        return self.call("DELETE", path, body, **kwargs)


@pytest.fixture
def ui(client: FlaskClient) -> Ui:
    """The UI acting for alice, without an organization yet."""
    return Ui(client)


@pytest.fixture
def acme(ui: Ui) -> Ui:
    """Organization acme (external id org_acme) synced by alice, who is its admin; the UI now acts in it."""
    response = ui.post("/orgs/sync", {"name": "acme", "display_name": "Acme", "external_org_id": "org_acme"})
    assert response.status_code == 201, response.json
    return ui.in_org("org_acme")


def join(acme: Ui, user: str, role: str | None = None) -> Ui:
    """``user`` joins acme (by self-registration) and, when ``role`` is given, alice assigns it."""
    member = acme.as_user(user)
    assert member.post("/users", {"subject": user, "email": f"{user}@example.com"}).status_code in (200, 201)
    if role is not None:
        response = acme.post("/rbac/assign", {"subject": user, "email": f"{user}@example.com", "role_id": role})
        assert response.status_code == 200, response.json
        if role != "default":
            acme.post("/rbac/revoke", {"subject": user, "role_id": "default"})
    return member


def token_for(app: Flask, org: str, subject: str | None, *, scope: str = "full", workspace: str | None = None) -> str:
    """An API token of an existing member (or an organization token when ``subject`` is None)."""
    from app.repositories import orgs, tokens, users

    with app.app_context():
        organization = orgs.require_org(org)
        user = users.get_user_by_subject(subject) if subject else None
        _, secret = tokens.create_token(organization, user, "test", scope=scope, workspace_name=workspace)
        return secret
