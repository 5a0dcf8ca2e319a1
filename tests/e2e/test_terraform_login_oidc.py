"""``terraform login <host>`` end to end, with sign-in at a real OpenID provider (panva's oidc-provider).

The newest Terraform on PATH runs in a pseudo-terminal (it refuses to log in without one that answers); its
"Do you want to proceed?" is answered there. The browser is an HTTP client: it opens the URL Terraform prints,
follows the redirects to the provider, submits the login and consent forms, and lands on Terraform's loopback
server, which then redeems the code. The token Terraform stores is then what ``init`` and ``apply`` use with the
``cloud`` block: the CLI config has no credentials block, only the file ``terraform login`` wrote.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.e2e.terraform_cli import Terraform, TerraformBinary, cli_config, configuration, newest_terraform
from tests.e2e.tfc import TfcServer
from tests.live_server import LiveServer, free_port, server_environment
from tests.oidc_provider import OpenIdProvider, browse, install_provider, on_loopback, requests_fetch, start_provider
from tests.services import services_required
from tests.tfc_api.tls import make_certificates, tls_environment

pytestmark = pytest.mark.e2e

AUTHORIZATION_URL = re.compile(r"https://localhost:\d+/oauth/authorization\?\S+")


@dataclass
class LoginSetup:
    server: LiveServer
    provider: OpenIdProvider
    ca: Path
    mirror: Path
    directory: Path


@pytest.fixture(scope="module")
def newest() -> TerraformBinary:
    binary = newest_terraform()
    if binary is None:
        message = "no Terraform >= 1.6 on PATH (terraform login with the cloud block needs it)"
        if services_required():
            pytest.fail(f"{message} and STATESMAN_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return binary


@pytest.fixture(scope="module")
def login_setup(tmp_path_factory: pytest.TempPathFactory, provider_mirror: Path) -> Iterator[LoginSetup]:
    """An HTTPS server with sign-in at a real provider; the provider's group ``platform`` is ``acme``'s admins."""
    directory = tmp_path_factory.mktemp("login")
    installed = install_provider(directory / "provider")
    port = free_port()
    provider = start_provider(installed, f"https://localhost:{port}/oauth/callback", directory / "provider.log")
    certificates = make_certificates(directory / "tls")
    data_dir = directory / "server"
    data_dir.mkdir()
    extra = {
        **tls_environment(certificates),
        "OPENTACO_AUTH_ISSUER": provider.issuer,
        "OPENTACO_AUTH_CLIENT_ID": provider.client_id,
        "OPENTACO_AUTH_CLIENT_SECRET": provider.client_secret,
        "OPENTACO_AUTH_SCOPES": "openid email groups",
        "OPENTACO_AUTH_GROUP_ORGS": "platform=acme:admin",
        "OPENTACO_TERRAFORM_TOKEN_TTL": "1h",
    }
    server = LiveServer(
        data_dir, port, server_environment(data_dir, port, 2, extra), data_dir / "server.log", scheme="https"
    )
    try:
        server.flask("db", "upgrade")
        server.flask("orgs", "create", "acme")
        server.start()
        yield LoginSetup(server, provider, certificates.ca, provider_mirror, directory)
    finally:
        server.stop()
        provider.stop()


def run_in_terminal(command: list[str], cwd: Path, env: dict[str, str], ca: Path, login: str) -> tuple[int, str]:
    """Run ``terraform login`` on a pseudo-terminal: answer "yes", then sign in as ``login`` in the "browser".

    Returns the exit status and the transcript (what the terminal showed, plus what was typed).
    """
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True
    )
    os.close(terminal)
    shown: list[str] = []
    answered = False
    browsing: threading.Thread | None = None
    browser_result: list[object] = []

    def browser(url: str) -> None:
        try:
            session = requests.Session()
            landed, _status, _body = browse(url, lambda _u: requests_fetch(session, str(ca)), login, on_loopback)
            browser_result.append(("landed", landed.split("?")[0]))
            # The last hop is Terraform's own loopback server, which takes the code and thanks the browser. Terraform
            # stops that server once it has the code, so under load the thanks page itself may never come.
            thanks = session.get(landed, timeout=30)
            browser_result.append(("thanked", thanks.status_code))
        except Exception as exc:  # reported by the assertion below, with the transcript
            browser_result.append(exc)

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 4096).decode(errors="replace")
            except OSError:  # the terminal closed: Terraform exited
                break
            shown.append(chunk.replace("\r\n", "\n"))
        text = "".join(shown)
        if not answered and "Enter a value:" in text:
            os.write(controller, b"yes\n")
            shown.append("yes   <- typed\n")
            answered = True
        match = AUTHORIZATION_URL.search(text)
        if browsing is None and match:
            browsing = threading.Thread(target=browser, args=(match.group(0),), daemon=True)
            browsing.start()
        if process.poll() is not None and not ready:
            break
    if process.poll() is None:
        process.kill()
    os.close(controller)
    status = process.wait(timeout=10)
    if browsing is not None:
        # Terraform may exit as soon as its loopback server has the code, before the browser has read the reply.
        browsing.join(timeout=30)
    return status, "".join(shown) + f"\n[browser: {browser_result}]\n"


def test_terraform_login_signs_in_at_the_provider_and_the_token_runs_the_cloud_block(
    newest: TerraformBinary, login_setup: LoginSetup, tmp_path: Path
) -> None:
    hostname = f"localhost:{login_setup.server.port}"
    home = tmp_path / "home"
    (home / ".terraform.d").mkdir(parents=True)  # Terraform writes credentials there but does not create it
    config = tmp_path / "cli.tfrc"
    config.write_text(cli_config(login_setup.mirror))  # providers only; no credentials block
    workdir = tmp_path / "config"
    workdir.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TF_")},
        "HOME": str(home),
        "TF_CLI_CONFIG_FILE": str(config),
        "SSL_CERT_FILE": str(login_setup.ca),
        "CHECKPOINT_DISABLE": "1",
        "BROWSER": "/bin/false",  # no browser to open: the URL is read from the terminal
        "TF_DATA_DIR": str(workdir / ".terraform"),
    }
    status, transcript = run_in_terminal(
        [str(newest.path), "login", "-no-color", hostname], workdir, env, login_setup.ca, "alice"
    )
    (tmp_path / "transcript.txt").write_text(transcript)
    print(transcript)
    assert status == 0, transcript
    assert "Terraform will request an API token for " + hostname + " using OAuth." in transcript
    assert "Success! Terraform has obtained and saved an API token." in transcript
    # Our provider and server sent the browser to Terraform's loopback server with the code, and Terraform took it.
    assert "[browser: [('landed', 'http://localhost:100" in transcript, transcript

    saved = json.loads((home / ".terraform.d" / "credentials.tfrc.json").read_text())
    token = saved["credentials"][hostname]["token"]
    assert token.startswith("stm_") and token not in transcript
    assert token not in login_setup.server.log_path.read_text()  # nor in the server's log

    tfc = TfcServer(login_setup.server, token, login_setup.ca, login_setup.mirror, tmp_path)
    me = tfc.api("GET", "account/details").json()["data"]["attributes"]
    assert (me["username"], me["email"]) == ("alice", "alice@example.test")

    # Terraform writes credentials.tfrc.json into ~/.terraform.d even when TF_CLI_CONFIG_FILE names the CLI config,
    # but reads that directory only when TF_CLI_CONFIG_FILE is unset (cliconfig.LoadConfig): from here on the CLI
    # config is ~/.terraformrc, as on a person's machine, and the token comes from the file login wrote.
    (home / ".terraformrc").write_text(config.read_text())
    after = {k: v for k, v in env.items() if k != "TF_CLI_CONFIG_FILE"}
    terraform = Terraform(newest, workdir, {**after, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"})
    terraform.write(configuration("signed in with oidc", tfc.backend('name = "after-oidc-login"', kind="cloud")))
    terraform.ok("init", "-input=false")
    terraform.ok("apply", "-auto-approve", "-input=false")
    assert tfc.current_state("after-oidc-login")["outputs"]["greeting"]["value"] == "signed in with oidc"
