"""Real Terraform with the http backend, authenticated by a JWT from a locally served OIDC issuer."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fake_oidc import FakeIssuer
from tests.live_server import LiveServer, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    fake = FakeIssuer()
    yield fake
    fake.close()


@pytest.fixture
def jwt_server(tmp_path: Path, issuer: FakeIssuer) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path / "server",
        workers=2,
        extra_env={"AUTH_JWT_OIDC_ISSUER_URL": issuer.url, "AUTH_JWT_AUDIENCE": "statesman"},
    )
    server.flask("orgs", "create", "acme")
    yield server
    server.stop()


def terraform(binary: Path, workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args, "-no-color"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )


def test_terraform_apply_with_a_jwt(
    terraform_bin: Path, jwt_server: LiveServer, issuer: FakeIssuer, tf_env: dict[str, str], tmp_path: Path
) -> None:
    workdir = tmp_path / "config"
    workdir.mkdir()
    address = f"{jwt_server.url}/state/acme/prod"
    (workdir / "main.tf").write_text(
        'terraform {\n  backend "http" {\n'
        f'    address = "{address}"\n    lock_address = "{address}"\n    unlock_address = "{address}"\n'
        '    username = "jwt"\n  }\n}\n'
        'output "greeting" { value = "hello from a JWT" }\n'
    )
    env = {**tf_env, "TF_HTTP_PASSWORD": issuer.mint(project="acme", state="prod")}
    for args in (("init", "-input=false"), ("apply", "-auto-approve", "-input=false")):
        result = terraform(terraform_bin, workdir, env, *args)
        assert result.returncode == 0, result.stdout + result.stderr
    stored = requests.get(address, auth=("jwt", env["TF_HTTP_PASSWORD"]), timeout=10)
    assert stored.status_code == 200
    assert stored.json()["outputs"]["greeting"]["value"] == "hello from a JWT"

    other = {**tf_env, "TF_HTTP_PASSWORD": issuer.mint(project="acme", state="staging")}
    denied = terraform(terraform_bin, workdir, other, "plan", "-input=false")
    assert denied.returncode != 0
    # Terraform 1.0.3 words a 403 as "invalid auth" (a 401 is "requires auth").
    assert "HTTP remote state endpoint invalid auth" in denied.stderr
