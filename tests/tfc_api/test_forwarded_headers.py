"""``X-Forwarded-*`` decide the links a response hands out only when the peer is a trusted proxy.

The signed upload URL of a pending state version is the link under test: Terraform PUTs the state to exactly that
address, so a spoofed host there would send a state to whoever the header names.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Config, ConfigError, load_config
from tests.factories import bearer, make_token

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "statesman.example.com", "X-Forwarded-Port": "443"}


def upload_url(app: Flask, peer: str, headers: dict[str, str]) -> str:
    """The hosted upload URL of a new pending version, asked for from ``peer`` with ``headers``."""
    client: FlaskClient = app.test_client()
    token = make_token(app)
    auth = {**bearer(token), "Content-Type": "application/vnd.api+json", **headers}
    environ = {"REMOTE_ADDR": peer}
    made = client.post(
        "/api/v2/organizations/acme/workspaces",
        json={"data": {"type": "workspaces", "attributes": {"name": f"prod-{uuid.uuid4().hex[:8]}"}}},
        headers=auth,
        environ_base=environ,
    )
    assert made.status_code == 201, made.data
    workspace_id = made.json["data"]["id"]
    locked = client.post(f"/api/v2/workspaces/{workspace_id}/actions/lock", json={}, headers=auth, environ_base=environ)
    assert locked.status_code == 200, locked.data
    attributes: dict[str, Any] = {"serial": 1, "md5": "0" * 32, "lineage": "l"}
    created = client.post(
        f"/api/v2/workspaces/{workspace_id}/state-versions",
        json={"data": {"type": "state-versions", "attributes": attributes}},
        headers=auth,
        environ_base=environ,
    )
    assert created.status_code == 201, created.data
    return str(created.json["data"]["attributes"]["hosted-state-upload-url"])


@pytest.fixture
def behind_nginx(make_app: Any) -> Any:
    return lambda **changes: make_app(allow_x_forwarded_for=True, **changes)


def test_by_default_nothing_is_trusted(app: Flask) -> None:
    assert upload_url(app, "127.0.0.1", FORWARDED).startswith("http://localhost/api/v2/state-versions/")


def test_the_trusted_proxy_names_the_public_scheme_host_and_port(behind_nginx: Any) -> None:
    url = upload_url(behind_nginx(), "127.0.0.1", FORWARDED)
    assert url.startswith("https://statesman.example.com/api/v2/state-versions/")
    other_port = {**FORWARDED, "X-Forwarded-Port": "8443"}
    assert upload_url(behind_nginx(), "::1", other_port).startswith("https://statesman.example.com:8443/api/v2/")


def test_a_peer_outside_the_trusted_proxies_cannot_choose_the_links(behind_nginx: Any) -> None:
    url = upload_url(behind_nginx(), "203.0.113.9", FORWARDED)
    assert url.startswith("http://localhost/api/v2/state-versions/")


def test_a_dual_stack_listener_still_knows_its_proxy(behind_nginx: Any) -> None:
    assert upload_url(behind_nginx(), "::ffff:127.0.0.1", FORWARDED).startswith("https://statesman.example.com/")
    assert upload_url(behind_nginx(), "::ffff:203.0.113.9", FORWARDED).startswith("http://localhost/")


def test_a_client_cannot_choose_the_path_prefix(behind_nginx: Any) -> None:
    url = upload_url(behind_nginx(), "127.0.0.1", {**FORWARDED, "X-Forwarded-Prefix": "/evil"})
    assert url.startswith("https://statesman.example.com/api/v2/")


def test_trusted_proxies_may_be_networks(behind_nginx: Any) -> None:
    app = behind_nginx(trusted_proxies=("10.0.0.0/8",))
    assert upload_url(app, "10.20.30.40", FORWARDED).startswith("https://statesman.example.com/")
    assert upload_url(behind_nginx(trusted_proxies=("10.0.0.0/8",)), "127.0.0.1", FORWARDED).startswith("http://")


def test_trusted_proxies_setting_is_validated(config: Config) -> None:
    env = {"STATESMAN_ENV": "development", "DATA_DIR": str(config.data_dir)}
    parsed = load_config({**env, "TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7"})
    assert parsed.trusted_proxies == ("10.0.0.0/8", "192.0.2.7/32")
    assert load_config(env).trusted_proxies == ("127.0.0.1/32", "::1/128")
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_config({**env, "TRUSTED_PROXIES": "nginx.internal"})
    with pytest.raises(ConfigError, match="zone id"):
        load_config({**env, "TRUSTED_PROXIES": "fe80::1%eth0"})
    assert dataclasses.replace(config).allow_x_forwarded_for is False
