"""The shortest start there is, ``statesman -storage memory -auth-disable`` with nothing else set: it starts with an
ephemeral key and throwaway metadata (a warning says so) and serves a Terraform apply; nothing outlives it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.launcher import Launched, launch, user_environment
from tests.e2e.terraform_cli import Terraform, configuration, http_backend
from tests.live_server import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Launched, str, Path]]:
    cwd = tmp_path_factory.mktemp("quick-start")
    port = free_port()
    # -port only because 8080 may be taken on a shared machine; everything else is the command as documented.
    started = launch(["-storage", "memory", "-auth-disable", "-port", str(port)], cwd, user_environment())
    url = f"http://127.0.0.1:{port}"
    try:
        started.wait_for(f"{url}/healthz")
        yield started, url, cwd
    finally:
        started.stop()


def test_starts_with_an_ephemeral_key_and_serves_an_apply(
    quick_start: tuple[Launched, str, Path], terraform: Callable[..., Terraform], workspace: str
) -> None:
    started, url, cwd = quick_start
    output = started.output()
    assert "ephemeral encryption key" in output
    assert "configuration error" not in output
    address = f"{url}/state/acme/{workspace}"
    tf = terraform()
    tf.write(configuration("hello quick start", http_backend(address)))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")
    stored = requests.get(address, timeout=10)
    assert stored.status_code == 200
    assert stored.json()["outputs"]["greeting"]["value"] == "hello quick start"
    # Memory storage: nothing of the states lands in the working directory.
    assert not list(cwd.glob("data/**/*.tfstate*")) and not (cwd / "data" / "taco.db").exists()


def test_nothing_outlives_the_process(tmp_path: Path) -> None:
    port = free_port()
    started = launch(
        ["-port", str(port)], tmp_path, user_environment(OPENTACO_STORAGE="memory", OPENTACO_AUTH_DISABLE="true")
    )
    try:
        started.wait_for(f"http://127.0.0.1:{port}/healthz")
        lock = requests.request("LOCK", f"http://127.0.0.1:{port}/state/acme/prod", json={"ID": "one"}, timeout=10)
        assert lock.status_code == 200, lock.text
    finally:
        assert started.stop() == 0
    output = started.output()
    assert "ephemeral encryption key" in output
    scratch = [line.split(" under ", 1)[1].split(" ")[0] for line in output.splitlines() if "throwaway" in line]
    assert scratch and not Path(scratch[0]).exists()
