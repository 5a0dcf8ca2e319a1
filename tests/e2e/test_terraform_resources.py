"""Real resources (hashicorp/null from the filesystem mirror) through the http backend and the remote backend, on
Terraform 1.0.3 and the newest: create, change, ``-replace``, ``-target``, ``-refresh-only``, ``state mv``,
``state rm``, ``destroy``, and ``local-exec`` provisioners; the server's copy of the state is checked after each."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.terraform_cli import BackendServer, Terraform, http_backend, null_resources, resource_ids, triggers
from tests.e2e.tfc import TfcServer

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Backend:
    """Where one test's state lives: the configuration block, Terraform's environment and the server's copy."""

    block: str
    env: dict[str, str]
    stored: Callable[[], dict[str, Any]]


@pytest.fixture(params=["http", "remote"])
def backend(
    request: pytest.FixtureRequest, workspace: str, backend_server: BackendServer, tfc_server: TfcServer
) -> Backend:
    if request.param == "http":
        address = backend_server.state_url(workspace)
        return Backend(
            http_backend(address),
            {"TF_HTTP_USERNAME": "alice", "TF_HTTP_PASSWORD": backend_server.token},
            lambda: backend_server.get_state(workspace).json(),
        )
    return Backend(
        tfc_server.backend(f'name = "{workspace}"'), tfc_server.env(), lambda: tfc_server.current_state(workspace)
    )


def planned_actions(tf: Terraform) -> dict[str, list[str]]:
    """``{address: actions}`` of a fresh plan (through a plan file: ``plan -json`` is newer than 1.0.3)."""
    tf.ok("plan", "-input=false", "-out=check.plan")
    plan = json.loads(tf.ok("show", "-json", "check.plan").stdout)
    return {change["address"]: change["change"]["actions"] for change in plan.get("resource_changes", [])}


def test_resource_lifecycle(terraform: Callable[..., Terraform], backend: Backend) -> None:
    tf = terraform(**backend.env)
    # The provisioner leaves a line per creation: proof that local-exec ran, and when.
    created = "echo ${self.triggers.value} >> created.log"

    def write(resources: dict[str, str], outputs: str = "") -> None:
        tf.write(null_resources(resources, backend.block, command=created, outputs=outputs))

    def created_lines() -> list[str]:
        return (tf.workdir / "created.log").read_text().split()

    write({"a": "a1", "b": "b1"})
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    state = backend.stored()
    ids = resource_ids(state)
    assert set(ids) == {"null_resource.a", "null_resource.b"}
    assert state["outputs"]["a_id"]["value"] == ids["null_resource.a"]
    assert sorted(created_lines()) == ["a1", "b1"]
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")

    # What a creation shows is its trigger in the stored state and its provisioner's line: null 2.1.2 draws ids from
    # a random source seeded with the time in seconds, so two creations within one second may get the same id.
    # A changed trigger: null_resource has no in-place update, so Terraform replaces it.
    write({"a": "a2", "b": "b1"})
    tf.expect(2, "plan", "-detailed-exitcode", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    changed = backend.stored()
    assert triggers(changed) == {"null_resource.a": "a2", "null_resource.b": "b1"}
    assert resource_ids(changed)["null_resource.b"] == ids["null_resource.b"]
    assert created_lines() == ["a1", "b1", "a2"] or created_lines() == ["b1", "a1", "a2"]

    # -replace with an unchanged configuration.
    tf.ok("apply", "-auto-approve", "-input=false", "-replace=null_resource.b")
    replaced = backend.stored()
    assert replaced["serial"] > changed["serial"]
    assert resource_ids(replaced)["null_resource.a"] == resource_ids(changed)["null_resource.a"]
    assert created_lines()[3:] == ["b1"]

    # -target applies one of two pending changes; the other stays pending.
    write({"a": "a3", "b": "b3"})
    tf.ok("apply", "-auto-approve", "-input=false", "-target=null_resource.a")
    targeted = backend.stored()
    assert triggers(targeted) == {"null_resource.a": "a3", "null_resource.b": "b1"}
    assert resource_ids(targeted)["null_resource.b"] == resource_ids(replaced)["null_resource.b"]
    assert created_lines()[4:] == ["a3"]
    tf.expect(2, "plan", "-detailed-exitcode", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    applied = backend.stored()
    assert triggers(applied) == {"null_resource.a": "a3", "null_resource.b": "b3"}
    assert created_lines()[5:] == ["b3"]
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")

    # -refresh-only writes the refreshed state (a new output) and touches no resource.
    write({"a": "a3", "b": "b3"}, outputs='output "note" {\n  value = "refreshed"\n}\n')
    tf.ok("apply", "-auto-approve", "-input=false", "-refresh-only")
    refreshed = backend.stored()
    assert refreshed["serial"] > applied["serial"]
    assert refreshed["outputs"]["note"]["value"] == "refreshed"
    assert resource_ids(refreshed) == resource_ids(applied)

    # state mv: the same object under a new address, so the renamed configuration changes no resource (only the
    # outputs, which are named after the resources).
    tf.ok("state", "mv", "null_resource.a", "null_resource.c")
    moved = resource_ids(backend.stored())
    assert "null_resource.a" not in moved and moved["null_resource.c"] == resource_ids(applied)["null_resource.a"]
    write({"c": "a3", "b": "b3"})
    assert planned_actions(tf) == {"null_resource.b": ["no-op"], "null_resource.c": ["no-op"]}
    tf.ok("apply", "-auto-approve", "-input=false")

    # state rm: Terraform forgets the object; with its block gone too no resource changes.
    tf.ok("state", "rm", "null_resource.b")
    assert set(resource_ids(backend.stored())) == {"null_resource.c"}
    assert planned_actions(tf) == {"null_resource.b": ["create"], "null_resource.c": ["no-op"]}
    write({"c": "a3"})
    assert planned_actions(tf) == {"null_resource.c": ["no-op"]}

    tf.ok("destroy", "-auto-approve", "-input=false")
    destroyed = backend.stored()
    assert resource_ids(destroyed) == {}
    assert destroyed["lineage"] == state["lineage"]
    assert "null_resource" not in tf.ok("state", "list").stdout
