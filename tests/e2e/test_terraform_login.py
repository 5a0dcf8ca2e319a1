"""``terraform login <host>`` (the newer Terraform) against a server without ``login.v1``: Terraform falls back to
the tokens page, which exists and says how to create a token; the pasted token is saved and then works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.e2e.terraform_cli import Terraform, TerraformBinary, cli_config, configuration, requires_terraform
from tests.e2e.tfc import TfcServer

pytestmark = pytest.mark.e2e


def answer_prompts(
    command: list[str], cwd: Path, env: dict[str, str], answers: dict[str, str], timeout: float = 120.0
) -> tuple[int, str]:
    """Run ``command``, typing each answer once its prompt has been printed; (exit status, everything printed).

    Terraform reads each prompt's answer with a fresh buffered reader, so answers sent ahead of their prompt are
    swallowed by the previous one: each is written only when its prompt shows.
    """
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Terraform re-executes itself: a kill must reach the whole group
    )
    stdin, stdout = process.stdin, process.stdout
    assert stdin is not None and stdout is not None
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(iter(lambda: stdout.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    pending = list(answers.items())
    while pending and time.monotonic() < deadline and process.poll() is None:
        prompt, answer = pending[0]
        if prompt in "".join(printed):
            stdin.write(answer + "\n")
            stdin.flush()
            pending.pop(0)
        time.sleep(0.05)
    try:
        process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        reader.join(timeout=10)
        stdin.close()
        stdout.close()
    return process.wait(), "".join(printed)


def test_login_opens_the_tokens_page_and_saves_the_token(
    terraform_bin: TerraformBinary,
    terraform: Callable[..., Terraform],
    tfc_server: TfcServer,
    provider_mirror: Path,
    tmp_path: Path,
    workspace: str,
) -> None:
    # 1.0.3 has login too, but the newer one is what people run it with; one version keeps the suite short.
    requires_terraform(terraform_bin, 1, 6, "this terraform login test")
    home = tmp_path / "home"
    (home / ".terraform.d").mkdir(parents=True)  # Terraform writes the credentials file there, but never creates it
    # The user's own files: with TF_CLI_CONFIG_FILE set Terraform would skip credentials.tfrc.json, where login
    # saves the token, so the CLI config is ~/.terraformrc (providers from the mirror, no credentials yet).
    (home / ".terraformrc").write_text(cli_config(provider_mirror))
    token = tfc_server.server.create_token("acme", f"login-{workspace[-20:].strip('.-_')}")
    tf = terraform(
        "config",
        HOME=str(home),
        TF_CLI_CONFIG_FILE="",
        SSL_CERT_FILE=str(tfc_server.ca),
        TF_INPUT="1",
        BROWSER="/bin/false",  # nothing to open: the URL is read from the output
    )
    returncode, printed = answer_prompts(
        [str(tf.binary.path), "login", "-no-color", tfc_server.hostname],
        tf.workdir,
        tf.env,
        {"Only 'yes' will be accepted": "yes", f"Token for {tfc_server.hostname}:": token},
    )
    assert returncode == 0, printed
    # Terraform builds the URL from the API's hostname without its port (so only a server on 443 gets a URL that
    # opens as printed); the page is there at that path on the server's own host and port.
    assert "/app/settings/tokens?source=terraform-login" in printed, printed
    page = requests.get(
        f"{tfc_server.server.url}/app/settings/tokens?source=terraform-login", timeout=10, verify=str(tfc_server.ca)
    )
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "flask tokens create" in page.text and f"Token for {tfc_server.hostname}" in page.text
    assert token not in page.text and tfc_server.token not in page.text

    saved = json.loads((home / ".terraform.d" / "credentials.tfrc.json").read_text())
    assert saved["credentials"][tfc_server.hostname]["token"] == token
    # The saved token is the one Terraform uses from now on.
    tf.write(configuration("after login", tfc_server.backend(f'name = "{workspace}"')))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    assert tfc_server.current_state(workspace)["outputs"]["greeting"]["value"] == "after login"
