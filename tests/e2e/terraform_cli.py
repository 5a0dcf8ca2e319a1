"""Running the real Terraform binary against the http backend: runners, provider-free configurations, raw locks."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.live_server import LiveServer


@dataclass(frozen=True)
class Terraform:
    """Terraform bound to one working directory (with its own ``TF_DATA_DIR``) and environment."""

    binary: Path
    workdir: Path
    env: dict[str, str]

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``terraform <args> -no-color`` and return the result, whatever the exit status."""
        # Terraform strips -no-color wherever it appears; at the end it also works for "state pull".
        return subprocess.run(
            [str(self.binary), *args, "-no-color"],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run and assert exit status 0."""
        result = self.run(*args, env=env)
        assert result.returncode == 0, describe(result)
        return result

    def expect(self, status: int, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run and assert exit status ``status`` (``plan -detailed-exitcode``: 0 no changes, 2 changes)."""
        result = self.run(*args, env=env)
        assert result.returncode == status, describe(result)
        return result

    def fails(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run and assert a non-zero exit status."""
        result = self.run(*args, env=env)
        assert result.returncode != 0, describe(result)
        return result

    def write(self, text: str) -> None:
        """Replace the configuration with ``main.tf`` containing ``text``."""
        (self.workdir / "main.tf").write_text(text)


@dataclass(frozen=True)
class BackendServer:
    """A shared server with organization ``acme``, a full token (alice) and a read-only token (bob)."""

    server: LiveServer
    token: str
    read_only_token: str

    @property
    def auth(self) -> tuple[str, str]:
        return ("alice", self.token)

    def state_url(self, workspace: str, org: str = "acme") -> str:
        return f"{self.server.url}/state/{org}/{workspace}"

    def get_state(self, workspace: str) -> requests.Response:
        """GET the stored state as Terraform would, with alice's token."""
        return requests.get(self.state_url(workspace), auth=self.auth, timeout=10)


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """The command, exit status and both output streams, for assertion messages."""
    command = " ".join(str(arg) for arg in result.args[1:])
    return (
        f"$ terraform {command}\nexit status {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr together (Terraform prints errors on stderr, some messages on stdout)."""
    return result.stdout + result.stderr


def http_backend(
    address: str, *, gitlab: bool = False, username: str | None = None, password: str | None = None
) -> str:
    """A ``backend "http"`` block for ``address``: LOCK/UNLOCK on the address, or GitLab-style POST/DELETE on /lock."""
    lines = [f'address = "{address}"']
    if gitlab:
        lines += [
            f'lock_address = "{address}/lock"',
            'lock_method = "POST"',
            f'unlock_address = "{address}/lock"',
            'unlock_method = "DELETE"',
        ]
    else:
        lines += [f'lock_address = "{address}"', f'unlock_address = "{address}"']
    if username is not None:
        lines.append(f'username = "{username}"')
    if password is not None:
        lines.append(f'password = "{password}"')
    body = "".join(f"    {line}\n" for line in lines)
    return f'  backend "http" {{\n{body}  }}\n'


def configuration(greeting: str, backend: str | None = None) -> str:
    """Outputs and locals only (no providers): changing ``greeting`` changes the state."""
    terraform_block = f"terraform {{\n{backend}}}\n" if backend else ""
    return (
        f"{terraform_block}"
        f'locals {{\n  greeting = "{greeting}"\n  words    = split(" ", local.greeting)\n}}\n'
        'output "greeting" {\n  value = local.greeting\n}\n'
        'output "word_count" {\n  value = length(local.words)\n}\n'
    )


def lock_info(lock_id: str, who: str = "someone-else@elsewhere") -> str:
    """A LockInfo body as Terraform 1.0.3 sends it, with our own ID."""
    return json.dumps(
        {
            "ID": lock_id,
            "Operation": "OperationTypeApply",
            "Info": "",
            "Who": who,
            "Version": "1.0.3",
            "Created": "2024-05-01T12:00:00.000000Z",
            "Path": "",
        }
    )


def take_lock(url: str, auth: tuple[str, str], lock_id: str, method: str = "LOCK") -> requests.Response:
    """Send a LockInfo with our ID as another Terraform would: LOCK (or POST on /lock) takes, UNLOCK releases."""
    return requests.request(
        method, url, data=lock_info(lock_id), auth=auth, timeout=10, headers={"Content-Type": "application/json"}
    )
