"""Real Terraform credentials (1.0.3 and the newest) against the http backend: where they come from, read-only
and wrong tokens."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from tests.e2e.terraform_cli import BackendServer, Terraform, configuration, http_backend, output_of, take_lock

pytestmark = pytest.mark.e2e

Runner = Callable[..., Terraform]


@pytest.mark.parametrize("source", ["backend-block", "backend-config", "environment"])
def test_credential_sources(terraform: Runner, backend_server: BackendServer, workspace: str, source: str) -> None:
    address = backend_server.state_url(workspace)
    init_args: list[str] = []
    if source == "backend-block":
        tf = terraform()
        backend = http_backend(address, username="alice", password=backend_server.token)
    elif source == "backend-config":
        tf = terraform()
        backend = http_backend(address)
        init_args = ["-backend-config=username=alice", f"-backend-config=password={backend_server.token}"]
    else:
        tf = terraform(TF_HTTP_USERNAME="alice", TF_HTTP_PASSWORD=backend_server.token)
        backend = http_backend(address)
    tf.write(configuration(f"credentials from the {source}", backend))
    tf.ok("init", "-input=false", *init_args)
    tf.ok("apply", "-auto-approve", "-input=false")
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")
    state = backend_server.get_state(workspace).json()
    assert state["outputs"]["greeting"]["value"] == f"credentials from the {source}"


def test_read_only_token_can_plan_but_not_apply(
    terraform: Runner, backend_server: BackendServer, workspace: str
) -> None:
    address = backend_server.state_url(workspace)
    writer = terraform("writer", TF_HTTP_USERNAME="alice", TF_HTTP_PASSWORD=backend_server.token)
    writer.write(configuration("written by alice", http_backend(address)))
    writer.ok("init", "-input=false")
    writer.ok("apply", "-auto-approve", "-input=false")
    before = backend_server.get_state(workspace).content

    reader = terraform("reader", TF_HTTP_USERNAME="bob", TF_HTTP_PASSWORD=backend_server.read_only_token)
    reader.write(configuration("written by alice", http_backend(address)))
    reader.ok("init", "-input=false")
    reader.expect(0, "plan", "-detailed-exitcode", "-input=false", "-lock=false")
    assert reader.ok("state", "pull").stdout == before.decode() + "\n"

    reader.write(configuration("bob was here", http_backend(address)))
    reader.expect(2, "plan", "-detailed-exitcode", "-input=false", "-lock=false")
    # Terraform (1.0.3 and 1.11 alike) words a 403 on LOCK as "invalid auth" (and a 401 as "requires auth").
    locked_out = reader.fails("apply", "-auto-approve", "-input=false")
    assert "HTTP remote state endpoint invalid auth" in output_of(locked_out)
    # Without a lock the write itself is refused; Terraform only prints the status of a refused write.
    unlocked = reader.fails("apply", "-auto-approve", "-input=false", "-lock=false")
    assert "HTTP error: 403" in output_of(unlocked)
    assert backend_server.get_state(workspace).content == before

    bob = ("bob", backend_server.read_only_token)
    assert take_lock(address, bob, "bob-lock").status_code == 403
    assert requests.post(address, data=before, auth=bob, timeout=10).status_code == 403


def test_wrong_token_is_unauthorized(terraform: Runner, backend_server: BackendServer, workspace: str) -> None:
    address = backend_server.state_url(workspace)
    writer = terraform("writer", TF_HTTP_USERNAME="alice", TF_HTTP_PASSWORD=backend_server.token)
    writer.write(configuration("the real state", http_backend(address)))
    writer.ok("init", "-input=false")
    writer.ok("apply", "-auto-approve", "-input=false")
    before = backend_server.get_state(workspace).content

    stranger = terraform("stranger", TF_HTTP_USERNAME="alice", TF_HTTP_PASSWORD="not-a-token")
    stranger.write(configuration("an intruder", http_backend(address)))
    # Terraform words a 401 as "requires auth"; its init reads the state, so it already fails there.
    refused = stranger.fails("init", "-input=false")
    assert "HTTP remote state endpoint requires auth" in output_of(refused)
    refused = stranger.fails("apply", "-auto-approve", "-input=false")
    assert "HTTP remote state endpoint requires auth" in output_of(refused)
    assert backend_server.get_state(workspace).content == before

    raw = requests.get(address, auth=("alice", "not-a-token"), timeout=10)
    assert raw.status_code == 401
    assert raw.headers["WWW-Authenticate"] == 'Basic realm="statesman"'
