"""``terraform_remote_state`` with an outputs-only token, through the http backend and the remote backend, on
Terraform 1.0.3 and the newest: the consumer reads every output (sensitive ones included) and the token never
sees the producer's resources."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests

from tests.e2e.terraform_cli import BackendServer, Terraform, http_backend, null_resources, resource_ids
from tests.e2e.tfc import TfcServer

pytestmark = pytest.mark.e2e

OUTPUTS = (
    'output "greeting" {\n  value = "hello from the producer"\n}\n'
    'output "secret" {\n  value     = "s3cr3t"\n  sensitive = true\n}\n'
)


@dataclass(frozen=True)
class Source:
    """The producer's backend block and environment, the consumer's data source, and a raw read as the token."""

    producer_block: str
    producer_env: dict[str, str]
    data_source: str
    consumer_env: dict[str, str]
    read_as_token: Callable[[], requests.Response]


def outputs_only_token(create: Callable[..., str]) -> str:
    return create("acme", f"reader-{uuid.uuid4().hex[:8]}", "--outputs-only")


@pytest.fixture(params=["http", "remote"])
def source(
    request: pytest.FixtureRequest, workspace: str, backend_server: BackendServer, tfc_server: TfcServer
) -> Source:
    if request.param == "http":
        address = backend_server.state_url(workspace)
        token = outputs_only_token(backend_server.server.create_token)
        return Source(
            http_backend(address),
            {"TF_HTTP_USERNAME": "alice", "TF_HTTP_PASSWORD": backend_server.token},
            f'  backend = "http"\n  config = {{\n    address  = "{address}"\n'
            f'    username = "reader"\n    password = "{token}"\n  }}\n',
            {},
            lambda: requests.get(address, auth=("reader", token), timeout=10),
        )
    token = outputs_only_token(tfc_server.server.create_token)

    def read() -> requests.Response:
        workspace_id = tfc_server.workspace(workspace)["id"]
        version = tfc_server.api("GET", f"workspaces/{workspace_id}/current-state-version", token=token)
        if version.status_code != 200:
            return version
        url = version.json()["data"]["attributes"]["hosted-state-download-url"]
        return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10, verify=str(tfc_server.ca))

    return Source(
        tfc_server.backend(f'name = "{workspace}"'),
        tfc_server.env(),
        f'  backend = "remote"\n  config = {{\n    hostname     = "{tfc_server.hostname}"\n'
        f'    organization = "acme"\n    workspaces   = {{ name = "{workspace}" }}\n  }}\n',
        tfc_server.env(token, name=f"reader-{workspace}"),
        read,
    )


def test_remote_state_with_an_outputs_only_token(terraform: Callable[..., Terraform], source: Source) -> None:
    producer = terraform("producer", **source.producer_env)
    producer.write(null_resources({"app": "one"}, source.producer_block, outputs=OUTPUTS))
    producer.ok("init", "-input=false")
    producer.ok("apply", "-auto-approve", "-input=false")

    # The consumer keeps its own state locally; the token is used for the data source only.
    consumer = terraform("consumer", **source.consumer_env)
    consumer.write(
        f'data "terraform_remote_state" "producer" {{\n{source.data_source}}}\n'
        'output "greeting" {\n  value = data.terraform_remote_state.producer.outputs.greeting\n}\n'
        'output "secret" {\n  value     = data.terraform_remote_state.producer.outputs.secret\n'
        "  sensitive = true\n}\n"
        'output "app_id" {\n  value = data.terraform_remote_state.producer.outputs.app_id\n}\n'
    )
    consumer.ok("init", "-input=false")
    consumer.ok("apply", "-auto-approve", "-input=false")
    outputs = json.loads(consumer.ok("output", "-json").stdout)
    assert outputs["greeting"]["value"] == "hello from the producer"
    assert outputs["secret"] == {"sensitive": True, "type": "string", "value": "s3cr3t"}
    assert outputs["app_id"]["value"].isdigit()

    # What the token itself can read: the outputs, sensitive ones included, and no resources.
    raw = source.read_as_token()
    assert raw.status_code == 200, raw.text
    state = raw.json()
    assert state["outputs"]["secret"]["value"] == "s3cr3t"
    assert state["outputs"]["app_id"]["value"] == outputs["app_id"]["value"]
    assert resource_ids(state) == {} and state.get("resources", []) == []
