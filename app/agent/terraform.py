"""Which Terraform binary runs a job, the override that points it at the job's state, and its command lines."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.agent.tfvars import hcl_string

# Named like an override file, so Terraform merges it last over the configuration (override files load in lexical
# order) and its backend block replaces any ``backend`` or ``cloud`` block the uploaded configuration has.
OVERRIDE_FILE = "zzz_statesman_override.tf"
DEFAULT_BINARY = "terraform"
LATEST = ("", "latest")
_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?\Z")


class TerraformNotInstalled(Exception):
    """The job's Terraform version has no binary on this agent; the message says where the agent looked."""


@dataclass(frozen=True)
class TerraformInfo:
    """What ``terraform version -json`` says about a binary (the header lines of a run's log)."""

    version: str
    platform: str


def this_platform() -> str:
    """Terraform's name for this machine (``linux_amd64``), for when the binary cannot say."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "i386": "386"}.get(machine, machine)
    return f"{sys.platform}_{arch}"


def version_of(binary: Path, environment: Mapping[str, str]) -> TerraformInfo | None:
    """The binary's version and platform, or None when it does not answer like a Terraform."""
    try:
        result = subprocess.run(
            [str(binary), "version", "-json"],
            capture_output=True,
            env={**environment, "CHECKPOINT_DISABLE": "1"},
            timeout=60,
            check=False,
        )
        found: Any = json.loads(result.stdout)
        return TerraformInfo(str(found["terraform_version"]), str(found.get("platform") or this_platform()))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None


def select_binary(
    version: str,
    *,
    agent: str,
    default: str = DEFAULT_BINARY,
    versions_dir: Path | None = None,
    search_path: str | None = None,
    default_version: Callable[[Path], str | None] = lambda _binary: None,
) -> Path:
    """The binary for ``version``: ``default`` (on ``search_path``) for "latest", else ``<versions_dir>/<version>/
    terraform``, else ``default`` when ``default_version`` says it is exactly that version.

    ``TerraformNotInstalled`` names every place looked in.
    """
    fallback = _executable(default, search_path)
    if version in LATEST:
        if fallback is None:
            raise TerraformNotInstalled(f"Terraform is not installed on agent {agent} (looked for {default})")
        return fallback
    if not _VERSION.match(version):
        raise TerraformNotInstalled(
            f"Terraform version {version[:40]!r} is not an exact version: agent {agent} runs exact versions "
            "(such as 1.5.7) or latest"
        )
    looked = []
    if versions_dir is not None:
        candidate = versions_dir / version / "terraform"
        if _is_executable(candidate):
            return candidate
        looked.append(str(candidate))
    if fallback is not None and default_version(fallback) == version:
        return fallback
    looked.append(f"{default} ({'not found' if fallback is None else 'another version'})")
    raise TerraformNotInstalled(
        f"Terraform {version} is not installed on agent {agent} (looked for {', '.join(looked)})"
    )


def _executable(name: str, search_path: str | None) -> Path | None:
    if os.sep in name:
        return Path(name) if _is_executable(Path(name)) else None
    found = shutil.which(name, path=search_path)
    return Path(found) if found else None


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def override_file(state_path: Path) -> str:
    """The override configuration: a local backend on ``state_path`` (relative to the directory Terraform runs in)
    instead of the configuration's backend."""
    return f'terraform {{\n  backend "local" {{\n    path = {hcl_string(str(state_path))}\n  }}\n}}\n'


@dataclass(frozen=True)
class PlanOptions:
    """The run's attributes that change ``terraform plan``."""

    is_destroy: bool = False
    refresh: bool = True
    refresh_only: bool = False
    target_addrs: tuple[str, ...] = ()
    replace_addrs: tuple[str, ...] = ()


def init_command(binary: Path) -> list[str]:
    """``terraform init``; ``-reconfigure`` because an uploaded ``.terraform`` may remember the remote backend."""
    return [str(binary), "init", "-input=false", "-no-color", "-reconfigure"]


def plan_command(binary: Path, plan_file: Path, options: PlanOptions) -> list[str]:
    """``terraform plan`` saving its plan to ``plan_file``; exit code 2 means "changes", 0 "none"."""
    command = [str(binary), "plan", "-input=false", "-no-color", f"-out={plan_file}", "-detailed-exitcode"]
    if options.is_destroy:
        command.append("-destroy")
    if options.refresh_only:
        command.append("-refresh-only")
    if not options.refresh:
        command.append("-refresh=false")
    command += [f"-target={address}" for address in options.target_addrs]
    command += [f"-replace={address}" for address in options.replace_addrs]
    return command


def show_json_command(binary: Path, plan_file: Path) -> list[str]:
    """``terraform show -json`` of the saved plan (the run's JSON plan)."""
    return [str(binary), "show", "-json", "-no-color", str(plan_file)]


def apply_command(binary: Path, plan_file: Path) -> list[str]:
    """``terraform apply`` of exactly the saved plan (no new plan is made)."""
    return [str(binary), "apply", "-input=false", "-no-color", str(plan_file)]
