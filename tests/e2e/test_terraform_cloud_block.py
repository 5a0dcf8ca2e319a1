"""The ``cloud`` block (Terraform >= 1.1, so only the newer Terraform runs these; 1.0.3 is skipped with that
reason) against a live HTTPS server with real null resources: the name and tags strategies, state commands,
lock waits and conflicts, and 30 applies in a row on SQLite and on PostgreSQL metadata."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.backends import postgres_url, scratch_postgres_database
from tests.e2e.terraform_cli import (
    Terraform,
    TerraformBinary,
    null_resources,
    output_of,
    requires_terraform,
    resource_ids,
    stop,
    triggers,
)
from tests.e2e.tfc import TfcServer, start_tfc_server
from tests.services import require_service

pytestmark = pytest.mark.e2e

Runner = Callable[..., Terraform]
SECRET = 'output "secret" {\n  value     = "s3cr3t"\n  sensitive = true\n}\n'


@pytest.fixture
def cloud(terraform_bin: TerraformBinary, terraform: Runner) -> Callable[[TfcServer, str], Terraform]:
    """A runner for a cloud-block configuration on ``server`` (the test CA trusted, alice's token)."""
    requires_terraform(terraform_bin, 1, 1, "the cloud block")

    def make(server: TfcServer, name: str = "config") -> Terraform:
        return terraform(name, **server.env())

    return make


def test_name_strategy_apply_plan_output_and_state_commands(
    cloud: Callable[[TfcServer, str], Terraform], tfc_server: TfcServer, workspace: str
) -> None:
    tf = cloud(tfc_server, "config")
    block = tfc_server.backend(f'name = "{workspace}"', kind="cloud")
    tf.write(null_resources({"app": "one"}, block, outputs=SECRET))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    stored = tfc_server.current_state(workspace)
    ids = resource_ids(stored)
    assert list(ids) == ["null_resource.app"]
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")

    # The cloud block reads outputs through current-state-version-outputs (sensitive ones one by one).
    assert tf.ok("output", "-raw", "app_id").stdout == ids["null_resource.app"]
    outputs = json.loads(tf.ok("output", "-json").stdout)
    assert outputs["secret"] == {"sensitive": True, "type": "string", "value": "s3cr3t"}
    assert tf.ok("state", "list").stdout.split() == ["null_resource.app"]
    assert f'id = "{ids["null_resource.app"]}"' in tf.ok("show").stdout

    pulled = json.loads(tf.ok("state", "pull").stdout)
    assert (pulled["serial"], pulled["lineage"]) == (stored["serial"], stored["lineage"])
    pushed = {**pulled, "serial": pulled["serial"] + 3}
    pushed["outputs"]["app_id"]["value"] = "pushed"
    (tf.workdir / "pushed.tfstate").write_text(json.dumps(pushed))
    tf.ok("state", "push", "pushed.tfstate")
    after_push = tfc_server.current_state(workspace)
    assert after_push["serial"] >= pushed["serial"]
    assert after_push["outputs"]["app_id"]["value"] == "pushed"
    assert tf.ok("output", "-raw", "app_id").stdout == "pushed"

    tf.write(null_resources({"app": "two"}, block, outputs=SECRET))
    tf.expect(2, "plan", "-detailed-exitcode", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    changed = tfc_server.current_state(workspace)
    assert triggers(changed) == {"null_resource.app": "two"}
    assert changed["outputs"]["app_id"]["value"] == resource_ids(changed)["null_resource.app"]
    assert tfc_server.workspace(workspace)["attributes"]["locked"] is False


def test_lock_timeout_waits_for_the_holder(
    cloud: Callable[[TfcServer, str], Terraform], tfc_server: TfcServer, workspace: str
) -> None:
    tf = cloud(tfc_server, "config")
    block = tfc_server.backend(f'name = "{workspace}"', kind="cloud")
    tf.write(null_resources({"app": "one"}, block))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    before = tfc_server.current_state(workspace)
    tfc_server.lock(workspace, "another client")

    tf.write(null_resources({"app": "two"}, block))
    waiting = tf.popen("apply", "-auto-approve", "-input=false", "-lock-timeout=90s")
    try:
        time.sleep(6)
        assert waiting.poll() is None, "apply did not wait for the lock: " + "".join(waiting.communicate())
        assert tfc_server.current_state(workspace)["serial"] == before["serial"]  # nothing written while waiting
        tfc_server.unlock(workspace)
        stdout, stderr = waiting.communicate(timeout=120)
    finally:
        stop(waiting)
    assert waiting.returncode == 0, stdout + stderr
    assert "Apply complete!" in stdout
    assert triggers(tfc_server.current_state(workspace)) == {"null_resource.app": "two"}
    assert tfc_server.workspace(workspace)["attributes"]["locked"] is False


def test_plan_fails_while_an_apply_holds_the_lock(
    cloud: Callable[[TfcServer, str], Terraform], tfc_server: TfcServer, workspace: str
) -> None:
    applier = cloud(tfc_server, "applier")
    block = tfc_server.backend(f'name = "{workspace}"', kind="cloud")
    applier.write(null_resources({"slow": "one"}, block, sleep=20))
    applier.ok("init", "-input=false")
    running = applier.popen("apply", "-auto-approve", "-input=false")
    try:
        tfc_server.wait_until_locked(workspace)
        # The server names the holder (go-tfe drops a 409's body, so Terraform itself names only the lock ID).
        holder = tfc_server.workspace(workspace)["relationships"]["locked-by"]["data"]
        alice = tfc_server.api("GET", "account/details").json()["data"]["id"]
        assert holder == {"id": alice, "type": "users"}
        planner = cloud(tfc_server, "planner")
        planner.write(null_resources({"slow": "one"}, block, sleep=20))
        planner.ok("init", "-input=false")
        refused = planner.fails("plan", "-input=false")
        message = " ".join(output_of(refused).split())  # Terraform wraps long lines
        assert "Error acquiring the state lock" in message
        assert f'lock ID: "acme/{workspace}"' in message and "already locked" in message
        stdout, stderr = running.communicate(timeout=120)
    finally:
        stop(running)
    assert running.returncode == 0, stdout + stderr
    assert list(resource_ids(tfc_server.current_state(workspace))) == ["null_resource.slow"]
    assert tfc_server.workspace(workspace)["attributes"]["locked"] is False


def test_tags_strategy_workspace_commands(
    cloud: Callable[[TfcServer, str], Terraform], tfc_server: TfcServer, workspace: str
) -> None:
    tag = f"app-{uuid.uuid4().hex[:8]}"
    first, second = f"{workspace[:80]}-x", f"{workspace[:80]}-y"
    # Terraform never creates the workspace TF_WORKSPACE names ("we deliberately DON'T implicitly create a
    # workspace from TF_WORKSPACE"): it must exist and carry the tags, as another team member would have left it.
    created = tfc_server.api(
        "POST",
        "organizations/acme/workspaces",
        json={"data": {"type": "workspaces", "attributes": {"name": first}}},
    )
    assert created.status_code == 201, created.text
    tagged = tfc_server.api(
        "POST",
        f"workspaces/{created.json()['data']['id']}/relationships/tags",
        json={"data": [{"type": "tags", "attributes": {"name": tag}}]},
    )
    assert tagged.status_code == 204, tagged.text
    tf = cloud(tfc_server, "config")
    tf.write(null_resources({"app": "tagged"}, tfc_server.backend(f'tags = ["{tag}"]', kind="cloud")))
    tf.ok("init", "-input=false", env={"TF_WORKSPACE": first})
    assert tag in tfc_server.workspace(first)["attributes"]["tag-names"]
    tf.ok("apply", "-auto-approve", "-input=false", env={"TF_WORKSPACE": first})
    tf.ok("workspace", "new", second)
    assert tag in tfc_server.workspace(second)["attributes"]["tag-names"]
    tf.ok("apply", "-auto-approve", "-input=false")
    listed = tf.ok("workspace", "list").stdout
    assert f"* {second}" in listed and first in listed
    tf.ok("workspace", "select", first)
    assert f"* {first}" in tf.ok("workspace", "list").stdout
    # The workspace still has a resource in its state: Terraform refuses unless forced (a safe delete).
    tf.ok("workspace", "delete", "-force", second)
    assert tfc_server.api("GET", f"organizations/acme/workspaces/{second}").status_code == 404
    assert second not in tf.ok("workspace", "list").stdout
    assert list(resource_ids(tfc_server.current_state(first))) == ["null_resource.app"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def metadata_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    provider_mirror: Path,
    terraform_bin: TerraformBinary,
) -> Iterator[TfcServer]:
    """A 4-worker HTTPS server whose metadata is in SQLite or in a scratch PostgreSQL database."""
    requires_terraform(terraform_bin, 1, 1, "the cloud block")  # before starting a server nobody would use
    if request.param == "sqlite":
        tfc = start_tfc_server(tmp_path_factory.mktemp("sqlite"), provider_mirror)
        yield tfc
        tfc.server.stop()
        return
    require_service("postgres")
    with scratch_postgres_database() as database:
        tfc = start_tfc_server(
            tmp_path_factory.mktemp("postgres"), provider_mirror, extra_env={"DATABASE_URL": postgres_url(database)}
        )
        try:
            yield tfc
        finally:
            tfc.server.stop()


APPLIES = 30


def test_thirty_applies_in_a_row(
    cloud: Callable[[TfcServer, str], Terraform], metadata_server: TfcServer, workspace: str
) -> None:
    """Every apply of a changed resource succeeds, leaves no errored.tfstate and leaves the workspace unlocked."""
    tf = cloud(metadata_server, "config")
    block = metadata_server.backend(f'name = "{workspace}"', kind="cloud")
    tf.write(null_resources({"app": "0"}, block))
    tf.ok("init", "-input=false")
    failures, still_locked, errored = [], [], []
    started = time.monotonic()
    for number in range(1, APPLIES + 1):
        tf.write(null_resources({"app": str(number)}, block))
        result = tf.run("apply", "-auto-approve", "-input=false")
        if result.returncode != 0:
            failures.append(f"apply {number}: {output_of(result)[-1500:]}")
        if (tf.workdir / "errored.tfstate").exists():
            errored.append(number)
            (tf.workdir / "errored.tfstate").unlink()
        if metadata_server.workspace(workspace)["attributes"]["locked"]:
            still_locked.append(number)
            metadata_server.api("POST", f"workspaces/{metadata_server.workspace(workspace)['id']}/actions/force-unlock")
    elapsed = time.monotonic() - started
    print(f"{APPLIES} applies in {elapsed:.1f}s: {len(failures)} failed, {len(errored)} errored.tfstate")
    assert failures == [] and errored == [] and still_locked == [], (
        f"{len(failures)} failed, errored.tfstate after {errored}, still locked after {still_locked}\n"
        + "\n".join(failures[:3])
    )
    final = metadata_server.current_state(workspace)
    assert final["outputs"]["app_id"]["value"] == resource_ids(final)["null_resource.app"]
    versions = metadata_server.api("GET", f"workspaces/{metadata_server.workspace(workspace)['id']}/state-versions")
    assert versions.json()["meta"]["pagination"]["total-count"] >= APPLIES
