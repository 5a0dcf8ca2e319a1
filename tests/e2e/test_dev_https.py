"""Development mode (what ``make run`` starts) also serves HTTPS on the HTTP port + 1 with a development CA made
once in the data directory; the start-up message's ``SSL_CERT_FILE`` line, credentials block and ``cloud`` block,
pasted as they are, let the newer Terraform apply through the cloud block (Terraform >= 1.1)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.e2e.launcher import launch, user_environment
from tests.e2e.terraform_cli import Terraform, TerraformBinary, cli_config, requires_terraform
from tests.live_server import free_port

pytestmark = pytest.mark.e2e


def two_free_ports() -> int:
    """A port that is free, and so is the next one (the default HTTPS port)."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def pasted(output: str, marker: str) -> str:
    """The snippet the start-up message prints after ``marker``: indented lines up to the first closing brace."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line) + 1
    end = next(i for i in range(start, len(lines)) if lines[i] == "  }")
    return "\n".join(line[2:] for line in lines[start : end + 1]) + "\n"


def test_make_run_serves_the_cloud_block_over_https(
    tmp_path: Path, terraform_bin: TerraformBinary, terraform: Callable[..., Terraform], provider_mirror: Path
) -> None:
    requires_terraform(terraform_bin, 1, 1, "the cloud block")
    # Two workers a server: the machine is shared; the two gunicorns boot ten workers by default.
    env = user_environment(STATESMAN_ENV="development", FLASK_APP="app", WEB_CONCURRENCY="2", RUNS_ENABLED="true")
    migrated = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    port = two_free_ports()
    # The command `make run` runs.
    started = launch(["-listen", f"127.0.0.1:{port}", "-auth-disable", "-agent"], tmp_path, env)
    try:
        ca = tmp_path / "data" / "tls" / "ca.pem"
        started.wait_for(f"http://127.0.0.1:{port}/healthz")
        started.wait_for(f"https://localhost:{port + 1}/healthz", verify=str(ca))
        output = started.output()
        assert f"export SSL_CERT_FILE={ca}" in output
        for key in ("ca.key", "server.key"):
            assert stat.S_IMODE(os.stat(tmp_path / "data" / "tls" / key).st_mode) == 0o600

        credentials = pasted(output, "# ~/.terraformrc")
        (tmp_path / "terraform.rc").write_text(cli_config(provider_mirror) + credentials)
        tf = terraform(TF_CLI_CONFIG_FILE=str(tmp_path / "terraform.rc"), SSL_CERT_FILE=str(ca))
        tf.write(pasted(output, "# main.tf:") + 'output "hello" {\n  value = "from the cloud block"\n}\n')
        tf.ok("init", "-input=false")
        tf.ok("apply", "-auto-approve", "-input=false")
        assert tf.ok("output", "-raw", "hello").stdout == "from the cloud block"
        # Both ports serve the same data: the state shows through the plain-HTTP http backend too.
        stored = requests.get(f"http://127.0.0.1:{port}/state/acme/prod", timeout=10)
        assert stored.json()["outputs"]["hello"]["value"] == "from the cloud block"
    finally:
        assert started.stop() == 0

    # Generated once: a restart keeps the CA that clients already trust.
    before = ca.read_bytes()
    again = launch(["-listen", f"127.0.0.1:{port}", "-auth-disable"], tmp_path, env)
    try:
        again.wait_for(f"https://localhost:{port + 1}/healthz", verify=str(ca))
    finally:
        again.stop()
    assert ca.read_bytes() == before
