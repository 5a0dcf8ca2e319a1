"""The supported production shape: the shipped ``config/nginx.conf`` terminating TLS in front of gunicorn.

Terraform talks only to nginx (``https://localhost:<nginx port>``); gunicorn trusts nginx's ``X-Forwarded-*``
(``OPENTACO_ALLOW_X_FORWARDED_FOR=true``, nginx on this host). nginx forwards ``Host`` without the port, so the
links Statesman hands out (discovery is relative, but signed state URLs are absolute) are right only because the
forwarded scheme, host and port are honoured: the cloud block's uploads go to those links.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from tests.e2e.terraform_cli import (
    Terraform,
    TerraformBinary,
    http_backend,
    null_resources,
    requires_terraform,
    resource_ids,
)
from tests.e2e.tfc import TfcServer
from tests.live_server import LiveServer, start_server
from tests.nginx import Front, run_nginx

pytestmark = pytest.mark.e2e

Runner = Callable[..., Terraform]
LARGE_STATE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Deployment:
    """gunicorn (``upstream``) behind nginx (``front``), and a TFC view of the front for Terraform."""

    upstream: LiveServer
    front: Front
    tfc: TfcServer


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, provider_mirror: Path) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("behind-nginx")
    upstream = start_server(directory / "server", workers=2, extra_env={"OPENTACO_ALLOW_X_FORWARDED_FOR": "true"})
    try:
        token = upstream.create_token("acme", "alice")
        with run_nginx(upstream.port, directory / "nginx") as front:
            # The same server as Terraform sees it: nginx's address and CA, the upstream's admin commands.
            seen = replace(upstream, port=front.port, scheme="https", process=None)
            config_dir = directory / "cli"
            config_dir.mkdir()
            yield Deployment(upstream, front, TfcServer(seen, token, front.ca, provider_mirror, config_dir))
    finally:
        upstream.stop()


def test_discovery_and_signed_links_name_the_public_address(deployment: Deployment) -> None:
    tfc = deployment.tfc
    discovery = requests.get(f"{deployment.front.url}/.well-known/terraform.json", verify=str(tfc.ca), timeout=30)
    assert discovery.status_code == 200 and discovery.json()["tfe.v2"].startswith("/api/v2")
    upload = pending_upload_url(tfc, "links")
    assert upload.startswith(f"https://localhost:{deployment.front.port}/api/v2/state-versions/"), upload
    # Asked directly (a trusted peer that sends no forwarding headers), gunicorn names the address it was asked at.
    direct = replace(tfc, server=deployment.upstream)
    assert pending_upload_url(direct, "links-direct").startswith(f"{deployment.upstream.url}/api/v2/state-versions/")


def pending_upload_url(tfc: TfcServer, name: str) -> str:
    made = tfc.api("POST", "organizations/acme/workspaces", json={"data": {"attributes": {"name": name}}})
    assert made.status_code == 201, made.text
    workspace_id = made.json()["data"]["id"]
    assert tfc.api("POST", f"workspaces/{workspace_id}/actions/lock", json={}).status_code == 200
    pending = tfc.api(
        "POST",
        f"workspaces/{workspace_id}/state-versions",
        json={"data": {"attributes": {"serial": 1, "md5": "0" * 32, "lineage": "l"}}},
    )
    assert pending.status_code == 201, pending.text
    return str(pending.json()["data"]["attributes"]["hosted-state-upload-url"])


def test_the_http_backend_through_nginx(deployment: Deployment, terraform: Runner, workspace: str) -> None:
    tfc = deployment.tfc
    address = f"{deployment.front.url}/state/acme/{workspace}"
    tf = terraform("http", SSL_CERT_FILE=str(tfc.ca))
    tf.write(null_resources({"app": "one"}, http_backend(address, username="terraform", password=tfc.token)))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    stored = requests.get(address, auth=("terraform", tfc.token), verify=str(tfc.ca), timeout=30)
    assert stored.status_code == 200 and list(resource_ids(stored.json())) == ["null_resource.app"]
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")


def test_the_remote_backend_through_nginx(deployment: Deployment, terraform: Runner, workspace: str) -> None:
    tfc = deployment.tfc
    tf = terraform("remote", **tfc.env())
    tf.write(null_resources({"app": "one"}, tfc.backend(f'name = "{workspace}"')))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    assert list(resource_ids(tfc.current_state(workspace))) == ["null_resource.app"]


def test_the_cloud_block_through_nginx(
    deployment: Deployment, terraform: Runner, terraform_bin: TerraformBinary, workspace: str
) -> None:
    requires_terraform(terraform_bin, 1, 1, "the cloud block")
    tfc = deployment.tfc
    tf = terraform("cloud", **tfc.env())
    tf.write(null_resources({"app": "one"}, tfc.backend(f'name = "{workspace}"', kind="cloud")))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    first = tfc.current_state(workspace)
    tf.write(null_resources({"app": "two"}, tfc.backend(f'name = "{workspace}"', kind="cloud")))
    tf.ok("apply", "-auto-approve", "-input=false")
    second = tfc.current_state(workspace)
    assert second["serial"] > first["serial"] and second["lineage"] == first["lineage"]


def test_a_100_mb_state_goes_through_nginx_both_ways(deployment: Deployment, tmp_path: Path) -> None:
    tfc = deployment.tfc
    body = large_state(tmp_path / "large.tfstate")
    digest = hashlib.sha256(body.read_bytes()).hexdigest()
    url = f"{deployment.front.url}/state/acme/large"
    with body.open("rb") as stream:
        written = requests.post(url, data=stream, auth=("terraform", tfc.token), verify=str(tfc.ca), timeout=300)
    assert written.status_code == 200, written.text
    with requests.get(url, auth=("terraform", tfc.token), verify=str(tfc.ca), timeout=300, stream=True) as read:
        assert read.status_code == 200
        received = hashlib.sha256()
        for chunk in read.iter_content(1024 * 1024):
            received.update(chunk)
    assert received.hexdigest() == digest


def large_state(path: Path) -> Path:
    """A valid state of about 100 MB: one output holding a long string (written without holding it twice)."""
    head = json.dumps({"version": 4, "serial": 1, "lineage": "large", "resources": []})[:-1]
    with path.open("wb") as out:
        out.write(head.encode() + b', "outputs": {"blob": {"type": "string", "value": "')
        block = (os.urandom(3 * 1024 * 1024).hex()[: 4 * 1024 * 1024]).encode()
        while out.tell() < LARGE_STATE_BYTES:
            out.write(block)
        out.write(b'"}}}')
    return path
