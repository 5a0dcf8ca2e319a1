"""Real Terraform (1.0.3 and the newest on PATH) against the real server (gunicorn, 4 workers) through the ``http``
backend."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.terraform_cli import (
    BackendServer,
    Terraform,
    configuration,
    http_backend,
    output_of,
    stop,
    take_lock,
)

pytestmark = pytest.mark.e2e

Runner = Callable[..., Terraform]


def alice(runner: Runner, backend_server: BackendServer, name: str = "config") -> Terraform:
    """A working directory whose credentials come from ``TF_HTTP_USERNAME``/``TF_HTTP_PASSWORD``."""
    return runner(name, TF_HTTP_USERNAME="alice", TF_HTTP_PASSWORD=backend_server.token)


def stored(backend_server: BackendServer, workspace: str) -> dict[str, Any]:
    """The workspace's current state as JSON (it must exist)."""
    response = backend_server.get_state(workspace)
    assert response.status_code == 200, response.text
    return response.json()


def test_apply_plan_and_pull_round_trip(terraform: Runner, backend_server: BackendServer, workspace: str) -> None:
    tf = alice(terraform, backend_server)
    tf.write(configuration("hello world", http_backend(backend_server.state_url(workspace))))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    first = stored(backend_server, workspace)
    assert first["outputs"]["greeting"]["value"] == "hello world"
    assert first["outputs"]["word_count"]["value"] == 2

    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")

    pulled = tf.ok("state", "pull")
    body = backend_server.get_state(workspace)
    # "state pull" prints the state through Terraform's UI, which ends every message with one more newline.
    assert pulled.stdout == body.content.decode() + "\n"

    tf.write(configuration("hello again, world", http_backend(backend_server.state_url(workspace))))
    tf.expect(2, "plan", "-detailed-exitcode", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    second = stored(backend_server, workspace)
    assert second["serial"] > first["serial"]
    assert second["lineage"] == first["lineage"]
    assert second["outputs"]["word_count"]["value"] == 3

    # Terraform released its lock: someone else can take it now.
    other_id = f"after-apply-{uuid.uuid4()}"
    assert take_lock(backend_server.state_url(workspace), backend_server.auth, other_id).status_code == 200
    released = take_lock(backend_server.state_url(workspace), backend_server.auth, other_id, method="UNLOCK")
    assert released.status_code == 200, released.text


def test_push_of_a_lower_serial_is_refused(
    terraform: Runner, backend_server: BackendServer, workspace: str, tmp_path: Path
) -> None:
    tf = alice(terraform, backend_server)
    backend = http_backend(backend_server.state_url(workspace))
    tf.write(configuration("version one", backend))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    old = tmp_path / "old.tfstate"
    old.write_bytes(backend_server.get_state(workspace).content)
    for greeting in ("version two", "version three", "version four"):
        tf.write(configuration(greeting, backend))
        tf.ok("apply", "-auto-approve", "-input=false")
    before = backend_server.get_state(workspace).content
    current_serial = json.loads(before)["serial"]
    old_serial = json.loads(old.read_bytes())["serial"]
    assert old_serial + 2 < current_serial

    # Terraform compares serials itself before sending anything...
    refused = tf.fails("state", "push", str(old))
    assert f"cannot import state with serial {old_serial} over newer state with serial {current_serial}" in (
        output_of(refused)
    )
    # ...so -force makes it send the old state (as serial old+1): the server's guard refuses it with 409.
    forced = tf.fails("state", "push", "-force", str(old))
    assert "HTTP error: 409" in output_of(forced)
    assert backend_server.get_state(workspace).content == before

    # Terraform 1.0.3 does not print the response body of a refused write; the server's message names both serials.
    sent = json.loads(old.read_bytes())
    sent["serial"] = old_serial + 1
    direct = requests.post(
        backend_server.state_url(workspace), data=json.dumps(sent), auth=backend_server.auth, timeout=10
    )
    assert direct.status_code == 409
    assert f"serial {old_serial + 1} is lower than the current serial {current_serial}" in direct.json()["error"]
    assert backend_server.get_state(workspace).content == before


def test_a_foreign_lock_blocks_apply_until_force_unlock(
    terraform: Runner, backend_server: BackendServer, workspace: str
) -> None:
    tf = alice(terraform, backend_server)
    backend = http_backend(backend_server.state_url(workspace))
    tf.write(configuration("before the lock", backend))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    before = backend_server.get_state(workspace).content

    holder = f"other-holder-{uuid.uuid4()}"
    taken = take_lock(backend_server.state_url(workspace), backend_server.auth, holder)
    assert taken.status_code == 200, taken.text

    tf.write(configuration("while locked", backend))
    blocked = tf.fails("apply", "-auto-approve", "-input=false")
    assert "Error acquiring the state lock" in output_of(blocked)
    assert f"ID={holder}" in output_of(blocked)
    assert backend_server.get_state(workspace).content == before

    # force-unlock sends an empty UNLOCK body; the ID typed here is only Terraform's own confirmation.
    unlocked = tf.ok("force-unlock", "-force", holder)
    assert "successfully unlocked" in unlocked.stdout
    tf.ok("apply", "-auto-approve", "-input=false")
    after = stored(backend_server, workspace)
    assert after["outputs"]["greeting"]["value"] == "while locked"
    assert after["serial"] > json.loads(before)["serial"]


def test_lock_timeout_waits_for_the_holder(terraform: Runner, backend_server: BackendServer, workspace: str) -> None:
    """``-lock-timeout`` retries a held lock on the http backend; Terraform 1.0.3's http backend never retries."""
    tf = alice(terraform, backend_server)
    if not tf.binary.at_least(1, 1):
        pytest.skip(f"Terraform {tf.binary.version_text}'s http backend never retries a held lock (-lock-timeout)")
    backend = http_backend(backend_server.state_url(workspace))
    tf.write(configuration("before the wait", backend))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    holder = f"waited-for-{uuid.uuid4()}"
    assert take_lock(backend_server.state_url(workspace), backend_server.auth, holder).status_code == 200

    tf.write(configuration("after the wait", backend))
    waiting = tf.popen("apply", "-auto-approve", "-input=false", "-lock-timeout=90s")
    try:
        time.sleep(5)
        assert waiting.poll() is None, "apply did not wait for the lock: " + "".join(waiting.communicate())
        assert stored(backend_server, workspace)["outputs"]["greeting"]["value"] == "before the wait"
        released = take_lock(backend_server.state_url(workspace), backend_server.auth, holder, method="UNLOCK")
        assert released.status_code == 200, released.text
        stdout, stderr = waiting.communicate(timeout=120)
    finally:
        stop(waiting)
    assert waiting.returncode == 0, stdout + stderr
    assert stored(backend_server, workspace)["outputs"]["greeting"]["value"] == "after the wait"


def test_apply_without_locking(terraform: Runner, backend_server: BackendServer, workspace: str) -> None:
    tf = alice(terraform, backend_server)
    backend = http_backend(backend_server.state_url(workspace))
    tf.write(configuration("unlocked one", backend))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false", "-lock=false")
    first = stored(backend_server, workspace)
    tf.write(configuration("unlocked two", backend))
    tf.ok("apply", "-auto-approve", "-input=false", "-lock=false")
    second = stored(backend_server, workspace)
    assert second["outputs"]["greeting"]["value"] == "unlocked two"
    assert second["serial"] > first["serial"]
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false", "-lock=false")


def test_gitlab_style_lock_address(terraform: Runner, backend_server: BackendServer, workspace: str) -> None:
    address = backend_server.state_url(workspace)
    tf = terraform()
    backend = http_backend(address, gitlab=True, username="alice", password=backend_server.token)
    tf.write(configuration("gitlab style", backend))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")
    first = stored(backend_server, workspace)
    assert first["outputs"]["greeting"]["value"] == "gitlab style"

    holder = f"gitlab-holder-{uuid.uuid4()}"
    taken = take_lock(f"{address}/lock", backend_server.auth, holder, method="POST")
    assert taken.status_code == 200, taken.text
    # The holder shows through either URL style.
    again = take_lock(address, backend_server.auth, f"late-{uuid.uuid4()}")
    assert again.status_code == 423 and again.json()["ID"] == holder

    tf.write(configuration("gitlab style, changed", backend))
    blocked = tf.fails("apply", "-auto-approve", "-input=false")
    assert f"ID={holder}" in output_of(blocked)
    tf.ok("force-unlock", "-force", holder)
    tf.ok("apply", "-auto-approve", "-input=false")
    second = stored(backend_server, workspace)
    assert second["outputs"]["greeting"]["value"] == "gitlab style, changed"
    assert second["serial"] > first["serial"]


def test_migrate_from_local_to_http_and_back(terraform: Runner, backend_server: BackendServer, workspace: str) -> None:
    tf = terraform()
    address = backend_server.state_url(workspace)
    tf.write(configuration("local one"))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    tf.write(configuration("local two"))
    tf.ok("apply", "-auto-approve", "-input=false")
    local = json.loads((tf.workdir / "terraform.tfstate").read_text())
    assert local["serial"] >= 1

    # Credentials through -backend-config: Terraform keeps them with the backend settings for later commands.
    tf.write(configuration("local two", http_backend(address)))
    tf.ok(
        "init",
        "-input=false",
        "-migrate-state",
        "-force-copy",
        "-backend-config=username=alice",
        f"-backend-config=password={backend_server.token}",
    )
    remote = stored(backend_server, workspace)
    # Terraform 1.0.3 starts a new lineage at serial 0 when the http workspace has no state yet (its remote state
    # manager re-reads the empty workspace just before the first write and forgets the migrated lineage and serial).
    assert remote["outputs"] == local["outputs"]
    assert tf.ok("state", "pull").stdout == backend_server.get_state(workspace).content.decode() + "\n"
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")

    tf.write(configuration("remote three", http_backend(address)))
    tf.ok("apply", "-auto-approve", "-input=false")
    remote = stored(backend_server, workspace)

    tf.write(configuration("remote three"))
    tf.ok("init", "-input=false", "-migrate-state", "-force-copy")
    back = json.loads((tf.workdir / "terraform.tfstate").read_text())
    assert (back["serial"], back["lineage"]) == (remote["serial"], remote["lineage"])
    assert back["outputs"] == remote["outputs"]
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")

    # Into a workspace that already holds this lineage: the lineage is kept and Terraform writes the next serial.
    tf.write(configuration("local four"))
    tf.ok("apply", "-auto-approve", "-input=false")
    local = json.loads((tf.workdir / "terraform.tfstate").read_text())
    tf.write(configuration("local four", http_backend(address)))
    tf.ok(
        "init",
        "-input=false",
        "-migrate-state",
        "-force-copy",
        "-backend-config=username=alice",
        f"-backend-config=password={backend_server.token}",
    )
    again = stored(backend_server, workspace)
    assert again["lineage"] == local["lineage"] == remote["lineage"]
    assert again["serial"] == local["serial"] + 1
    assert again["outputs"] == local["outputs"]


def test_dotted_workspaces_are_independent(terraform: Runner, backend_server: BackendServer, workspace: str) -> None:
    names = (f"{workspace}.app.prod", f"{workspace}.app.staging-1")
    prod, staging = (alice(terraform, backend_server, name) for name in names)
    for tf, name in ((prod, names[0]), (staging, names[1])):
        tf.write(configuration(f"this is {name}", http_backend(backend_server.state_url(name))))
        tf.ok("init", "-input=false")
        tf.ok("apply", "-auto-approve", "-input=false")
    for name in names:
        assert stored(backend_server, name)["outputs"]["greeting"]["value"] == f"this is {name}"
    assert stored(backend_server, names[0])["lineage"] != stored(backend_server, names[1])["lineage"]

    # A lock on one does not touch the other.
    holder = f"prod-holder-{uuid.uuid4()}"
    assert take_lock(backend_server.state_url(names[0]), backend_server.auth, holder).status_code == 200
    staging.write(configuration("staging moves on", http_backend(backend_server.state_url(names[1]))))
    staging.ok("apply", "-auto-approve", "-input=false")
    prod.write(configuration("prod is stuck", http_backend(backend_server.state_url(names[0]))))
    assert f"ID={holder}" in output_of(prod.fails("apply", "-auto-approve", "-input=false"))
    prod.ok("force-unlock", "-force", holder)

    assert stored(backend_server, names[0])["outputs"]["greeting"]["value"] == f"this is {names[0]}"
    assert stored(backend_server, names[1])["outputs"]["greeting"]["value"] == "staging moves on"
