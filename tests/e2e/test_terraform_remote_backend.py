"""Real Terraform (1.0.3 and the newest) with ``backend "remote"`` against a live server: HTTPS with a test CA, and
plain HTTP through a CLI-config ``host`` block. Configurations are outputs only (no providers); see
test_terraform_resources.py for real resources."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.e2e.terraform_cli import Terraform, cli_config, configuration, http_backend, output_of
from tests.e2e.tfc import TfcServer
from tests.live_server import start_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def remote(tfc_server: TfcServer, terraform: Callable[..., Terraform]) -> Callable[..., Terraform]:
    """A Terraform runner trusting the test CA and holding alice's token."""

    def make(name: str = "config") -> Terraform:
        return terraform(name, **tfc_server.env())

    return make


def test_init_apply_plan_pull_push_and_output(
    tfc_server: TfcServer, remote: Callable[..., Terraform], workspace: str
) -> None:
    tf = remote()
    tf.write(configuration("hello remote", tfc_server.backend(f'name = "{workspace}"')))
    tf.ok("init", "-input=false")
    # The remote backend creates the workspace with its own version; the server sends it back as it was sent.
    assert tfc_server.workspace(workspace)["attributes"]["terraform-version"] == tf.binary.version_text
    tf.ok("apply", "-auto-approve", "-input=false")
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")
    assert tf.ok("output", "-raw", "greeting").stdout == "hello remote"
    pulled = json.loads(tf.ok("state", "pull").stdout)
    assert pulled["outputs"]["greeting"]["value"] == "hello remote"
    assert tfc_server.current_state(workspace)["lineage"] == pulled["lineage"]

    newer = {**pulled, "serial": pulled["serial"] + 5}
    newer["outputs"]["greeting"]["value"] = "pushed"
    (tf.workdir / "newer.tfstate").write_text(json.dumps(newer))
    tf.ok("state", "push", "newer.tfstate")
    pushed = tfc_server.current_state(workspace)  # Terraform bumps the serial again when it persists a change
    assert pushed["serial"] >= pulled["serial"] + 5 and pushed["outputs"]["greeting"]["value"] == "pushed"
    older = {**pulled, "serial": pulled["serial"] + 1}
    older["outputs"]["greeting"]["value"] = "forced"
    (tf.workdir / "older.tfstate").write_text(json.dumps(older))
    assert "serial" in output_of(tf.fails("state", "push", "older.tfstate"))
    tf.ok("state", "push", "-force", "older.tfstate")
    forced = tfc_server.current_state(workspace)
    assert forced["serial"] < pushed["serial"] and forced["outputs"]["greeting"]["value"] == "forced"
    assert tf.ok("output", "-raw", "greeting").stdout == "forced"
    assert tfc_server.workspace(workspace)["attributes"]["locked"] is False


def test_locked_workspace_fails_names_the_lock_and_force_unlock(
    tfc_server: TfcServer, remote: Callable[..., Terraform], workspace: str
) -> None:
    tf = remote()
    tf.write(configuration("locked", tfc_server.backend(f'name = "{workspace}"')))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    tfc_server.lock(workspace, "maintenance")
    failed = " ".join(output_of(tf.fails("plan", "-input=false")).split())  # Terraform wraps long lines
    assert f'lock ID: "acme/{workspace}"' in failed and "already locked" in failed
    assert output_of(tf.fails("force-unlock", "-force", "acme/wrong"))
    tf.ok("force-unlock", "-force", f"acme/{workspace}")
    assert tfc_server.workspace(workspace)["attributes"]["locked"] is False
    tf.ok("plan", "-input=false")


def test_prefix_workspaces(tfc_server: TfcServer, remote: Callable[..., Terraform], workspace: str) -> None:
    prefix = f"{workspace[:80]}-"
    created = tfc_server.api(
        "POST",
        "organizations/acme/workspaces",
        json={"data": {"type": "workspaces", "attributes": {"name": f"{prefix}one"}}},
    )
    assert created.status_code == 201, created.text
    tf = remote()
    tf.write(configuration("prefixed", tfc_server.backend(f'prefix = "{prefix}"')))
    tf.ok("init", "-input=false", env={"TF_WORKSPACE": "one"})
    tf.ok("workspace", "new", "dev")
    assert tfc_server.workspace(f"{prefix}dev")["attributes"]["terraform-version"] == tf.binary.version_text
    tf.ok("apply", "-auto-approve", "-input=false")
    listed = tf.ok("workspace", "list").stdout
    assert "* dev" in listed and "one" in listed
    tf.ok("workspace", "select", "one")
    tf.ok("workspace", "delete", "dev")
    assert tfc_server.api("GET", f"organizations/acme/workspaces/{prefix}dev").status_code == 404
    assert "dev" not in tf.ok("workspace", "list").stdout


def test_remote_state_data_source(tfc_server: TfcServer, remote: Callable[..., Terraform], workspace: str) -> None:
    producer = remote("producer")
    producer.write(configuration("from the producer", tfc_server.backend(f'name = "{workspace[:80]}-producer"')))
    producer.ok("init", "-input=false")
    producer.ok("apply", "-auto-approve", "-input=false")
    consumer = remote("consumer")
    backend = tfc_server.backend(f'name = "{workspace[:80]}-consumer"')
    consumer.write(
        f"terraform {{\n{backend}}}\n"
        'data "terraform_remote_state" "producer" {\n  backend = "remote"\n  config = {\n'
        f'    hostname     = "{tfc_server.hostname}"\n    organization = "acme"\n'
        f'    workspaces   = {{ name = "{workspace[:80]}-producer" }}\n  }}\n}}\n'
        'output "copied" {\n  value = data.terraform_remote_state.producer.outputs.greeting\n}\n'
    )
    consumer.ok("init", "-input=false")
    consumer.ok("apply", "-auto-approve", "-input=false")
    assert consumer.ok("output", "-raw", "copied").stdout == "from the producer"


def test_migrate_state_from_the_http_backend(
    tfc_server: TfcServer, remote: Callable[..., Terraform], workspace: str
) -> None:
    tf = remote()
    address = f"{tfc_server.server.url}/state/acme/{workspace[:80]}-legacy"
    tf.write(configuration("legacy", http_backend(address, username="terraform", password=tfc_server.token)))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    tf.write(configuration("legacy two", http_backend(address, username="terraform", password=tfc_server.token)))
    tf.ok("apply", "-auto-approve", "-input=false")
    legacy_bytes = requests.get(
        address, auth=("terraform", tfc_server.token), timeout=10, verify=str(tfc_server.ca)
    ).content
    legacy = json.loads(legacy_bytes)

    migrated_name = f"{workspace[:80]}-migrated"
    tf.write(configuration("legacy two", tfc_server.backend(f'name = "{migrated_name}"')))
    tf.ok("init", "-migrate-state", "-force-copy", "-input=false")
    migrated = tfc_server.current_state(migrated_name)
    assert migrated["outputs"] == legacy["outputs"]
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")
    # Terraform 1.0.3 itself starts a new lineage at serial 0 whenever it writes into an empty remote state (its
    # remote state manager drops the migrated lineage before the first write; http -> http migrations and
    # `state push` into an empty http-backend state do the same), so only the content can be compared here. The
    # server keeps whatever serial and lineage a client sends (see tests/tfc_api/test_state_versions.py).
    version = tfc_server.api("GET", f"workspaces/{tfc_server.workspace(migrated_name)['id']}/current-state-version")
    assert version.json()["data"]["attributes"]["lineage"] == migrated["lineage"]


def test_host_block_over_plain_http(
    tmp_path: Path, terraform: Callable[..., Terraform], provider_mirror: Path, workspace: str
) -> None:
    server = start_server(tmp_path / "server", workers=2)
    try:
        token = server.create_token("acme", "alice")
        hostname = f"localhost:{server.port}"
        api = f"http://{hostname}/api/v2/"
        config = tmp_path / "plain.rc"
        config.write_text(
            cli_config(
                provider_mirror, {hostname: token}, {hostname: {"tfe.v2.1": api, "tfe.v2": api, "state.v2": api}}
            )
        )
        tf = terraform("plain", TF_CLI_CONFIG_FILE=str(config))
        tf.write(
            configuration(
                "over http",
                f'  backend "remote" {{\n    hostname     = "{hostname}"\n    organization = "acme"\n'
                f'    workspaces {{ name = "{workspace}" }}\n  }}\n',
            )
        )
        tf.ok("init", "-input=false")
        tf.ok("apply", "-auto-approve", "-input=false")
        assert tf.ok("output", "-raw", "greeting").stdout == "over http"
        pulled = requests.get(f"http://{hostname}/state/acme/{workspace}", auth=("alice", token), timeout=10)
        assert pulled.json()["outputs"]["greeting"]["value"] == "over http"
    finally:
        server.stop()
