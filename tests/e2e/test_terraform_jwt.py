"""Real Terraform (1.0.3 and the newest) with the http backend, authenticated by a JWT from a local OIDC issuer."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from tests.e2e.terraform_cli import Terraform, output_of
from tests.fake_oidc import FakeIssuer
from tests.live_server import LiveServer, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeIssuer]:
    fake = FakeIssuer()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory: pytest.TempPathFactory, issuer: FakeIssuer) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("jwt"),
        workers=2,
        extra_env={"AUTH_JWT_OIDC_ISSUER_URL": issuer.url, "AUTH_JWT_AUDIENCE": "statesman"},
    )
    server.flask("orgs", "create", "acme")
    yield server
    server.stop()


def test_terraform_apply_with_a_jwt(
    jwt_server: LiveServer, issuer: FakeIssuer, terraform: Callable[..., Terraform], workspace: str
) -> None:
    address = f"{jwt_server.url}/state/acme/{workspace}"
    token = issuer.mint(project="acme", state=workspace)
    tf = terraform(TF_HTTP_PASSWORD=token)
    tf.write(
        'terraform {\n  backend "http" {\n'
        f'    address = "{address}"\n    lock_address = "{address}"\n    unlock_address = "{address}"\n'
        '    username = "jwt"\n  }\n}\n'
        'output "greeting" { value = "hello from a JWT" }\n'
    )
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    stored = requests.get(address, auth=("jwt", token), timeout=10)
    assert stored.status_code == 200
    assert stored.json()["outputs"]["greeting"]["value"] == "hello from a JWT"

    denied = tf.fails("plan", "-input=false", env={"TF_HTTP_PASSWORD": issuer.mint(project="acme", state="staging")})
    # Terraform words a 403 as "invalid auth" (a 401 is "requires auth").
    assert "HTTP remote state endpoint invalid auth" in output_of(denied)
