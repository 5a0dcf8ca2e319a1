"""Fixtures for the TFC API through the Flask test client: a JSON:API client bound to a token."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import bearer, make_token
from tests.run_factories import tarball

MEDIA_TYPE = "application/vnd.api+json"


@dataclass
class Api:
    """A JSON:API client for one token (``None``: no Authorization header)."""

    client: FlaskClient
    token: str | None
    prefix: str = "/api/v2"

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        found = bearer(self.token) if self.token else {}
        return {**found, "Content-Type": MEDIA_TYPE, **(extra or {})}

    def url(self, path: str) -> str:
        return path if path.startswith("/") else f"{self.prefix}/{path}"

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(self.url(path), headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        data = b"" if body is None else json.dumps(body).encode()
        return self.client.post(self.url(path), data=data, headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        return self.client.patch(
            self.url(path), data=json.dumps(body).encode(), headers=self.headers(kwargs.pop("headers", None)), **kwargs
        )

    def delete(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        data = b"" if body is None else json.dumps(body).encode()
        return self.client.delete(
            self.url(path), data=data, headers=self.headers(kwargs.pop("headers", None)), **kwargs
        )

    def create_workspace(self, name: str, org: str = "acme", **attributes: Any) -> dict[str, Any]:
        response = self.post(
            f"organizations/{org}/workspaces",
            {"data": {"type": "workspaces", "attributes": {"name": name, **attributes}}},
        )
        assert response.status_code == 201, response.json
        return response.json["data"]

    def lock(self, workspace_id: str, reason: str = "test") -> TestResponse:
        return self.post(f"workspaces/{workspace_id}/actions/lock", {"reason": reason})

    def unlock(self, workspace_id: str) -> TestResponse:
        return self.post(f"workspaces/{workspace_id}/actions/unlock")

    def push(
        self, workspace_id: str, state: bytes, *, force: bool = False, md5: str | None = None, serial: int | None = None
    ) -> TestResponse:
        """Create a state version inline, as Terraform's remote backend does."""
        document = json.loads(state)
        attributes = {
            "serial": document["serial"] if serial is None else serial,
            "md5": md5 or hashlib.md5(state).hexdigest(),
            "lineage": document.get("lineage", ""),
            "state": base64.b64encode(state).decode(),
            "force": force,
        }
        return self.post(
            f"workspaces/{workspace_id}/state-versions", {"data": {"type": "state-versions", "attributes": attributes}}
        )


def state(serial: int, lineage: str = "lineage-1", outputs: dict[str, Any] | None = None, resources: int = 0) -> bytes:
    """A Terraform state document with outputs (values and types) and ``resources`` managed resources."""
    document = {
        "version": 4,
        "terraform_version": "1.0.3",
        "serial": serial,
        "lineage": lineage,
        "outputs": {
            name: {
                "value": value,
                "type": _type_of(value),
                **({"sensitive": True} if name.startswith("secret") else {}),
            }
            for name, value in (outputs or {}).items()
        },
        "resources": [
            {"mode": "managed", "type": "null_resource", "name": f"r{i}", "provider": "x", "instances": []}
            for i in range(resources)
        ],
    }
    return json.dumps(document, indent=2).encode()


def _type_of(value: Any) -> Any:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return ["tuple", [_type_of(v) for v in value]]
    if isinstance(value, dict):
        return ["object", {k: _type_of(v) for k, v in value.items()}]
    return "string"


def assert_error(response: TestResponse, status: int, *words: str) -> None:
    """A JSON:API error document with ``status`` whose detail mentions ``words``."""
    assert response.status_code == status, response.data
    assert response.mimetype == MEDIA_TYPE
    errors = response.json["errors"]
    assert errors and set(errors[0]) >= {"status", "title", "detail"}
    assert errors[0]["status"] == str(status)
    for word in words:
        assert word in errors[0]["detail"], errors[0]["detail"]


def uploaded_version(api: Api, workspace: dict[str, Any], *, speculative: bool = False) -> str:
    """A configuration version with its archive uploaded, as both clients make one."""
    created = api.post(
        f"workspaces/{workspace['id']}/configuration-versions",
        {
            "data": {
                "type": "configuration-versions",
                "attributes": {"auto-queue-runs": False, "speculative": speculative},
            }
        },
    )
    assert created.status_code == 201, created.json
    url = urlsplit(created.json["data"]["attributes"]["upload-url"])
    assert api.client.put(f"{url.path}?{url.query}", data=tarball()).status_code == 200
    return str(created.json["data"]["id"])


def run_body(workspace_id: str, version_id: str | None, **attributes: Any) -> dict[str, Any]:
    """A ``runs`` create body (no configuration-version relationship when ``version_id`` is None)."""
    relationships: dict[str, Any] = {"workspace": {"data": {"type": "workspaces", "id": workspace_id}}}
    if version_id is not None:
        relationships["configuration-version"] = {"data": {"type": "configuration-versions", "id": version_id}}
    return {"data": {"type": "runs", "attributes": attributes, "relationships": relationships}}


@pytest.fixture
def token(app: Flask) -> str:
    """alice, admin of acme."""
    return make_token(app)


@pytest.fixture
def api(client: FlaskClient, token: str) -> Api:
    return Api(client, token)


@pytest.fixture
def workspace(api: Api) -> dict[str, Any]:
    """Workspace ``prod`` in acme."""
    return api.create_workspace("prod", **{"terraform-version": "1.0.3"})
