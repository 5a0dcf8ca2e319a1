"""The package as an operator installs it: a wheel built from the checkout, installed into a fresh virtualenv with its
declared dependencies, then ``flask db upgrade`` and ``statesman`` run from a directory outside the checkout, and
Terraform applies through it.

Nothing of the checkout is on the import path of those commands, so a file missing from the wheel (a migration, a
package without ``__init__.py``, the gunicorn settings) fails here. The dependencies come from the package index pip
is configured with, as in a real install; pip's cache keeps that to seconds after the first run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.e2e.launcher import Launched
from tests.e2e.terraform_cli import Terraform, configuration, http_backend
from tests.live_server import _OUR_PREFIXES, REPO_ROOT, free_port

pytestmark = pytest.mark.e2e

# What the build reads: setup.cfg names the packages and the package data; the rest of the checkout stays behind.
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "README.md", "wsgi.py", "app", "config")
KMS_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def _suggests_init(output: str) -> bool:
    """Flask-Migrate's advice for a missing migrations directory ("Please use the 'init' command")."""
    return "db init" in output or "'init'" in output


@dataclass
class Installed:
    """A virtualenv holding the installed wheel, a working directory outside the checkout, and its environment."""

    venv: Path
    cwd: Path
    env: dict[str, str]

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.venv / "bin" / command[0]), *command[1:]],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result


def _run(*command: str | Path, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{output}"


def _clean_environment() -> dict[str, str]:
    """The caller's environment without our settings, this checkout or the test virtualenv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_OUR_PREFIXES) and k not in ("DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV", "FLASK_APP")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix))
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    env = _clean_environment()
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", root / "dist", source, cwd=root, env=env)
    (wheel,) = (root / "dist").glob("statesman-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=root, env=env)
    _run(venv / "bin" / "pip", "install", "--quiet", wheel, cwd=root, env=env)
    shutil.rmtree(source)  # nothing of what was built from may be found afterwards
    cwd = root / "elsewhere"
    cwd.mkdir()
    env.update(
        {"PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}", "KMS_KEY": KMS_KEY, "OPENTACO_SECRET_KEY": "installed"}
    )
    return Installed(venv, cwd, env)


@pytest.fixture(scope="module")
def served(installed: Installed) -> Iterator[tuple[str, str]]:
    """``flask db upgrade`` on an empty SQLite database, an organization, a user and a token, then ``statesman``."""
    installed.run("flask", "db", "upgrade")
    installed.run("flask", "orgs", "create", "acme")
    installed.run("flask", "users", "create", "alice", "--org", "acme")
    token = installed.run("flask", "tokens", "create", "--org", "acme", "--user", "alice").stdout.strip()
    port = free_port()
    log = installed.cwd / "statesman.log"
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [str(installed.venv / "bin" / "statesman"), "-listen", f"127.0.0.1:{port}", "-workers", "2"],
            cwd=installed.cwd,
            env=installed.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = Launched(process, log)
    url = f"http://127.0.0.1:{port}"
    try:
        started.wait_for(f"{url}/healthz")
        yield url, token
    finally:
        started.stop()


def test_the_wheel_runs_from_its_own_files(installed: Installed) -> None:
    find = "import importlib.util as u; print(*(u.find_spec(m).origin for m in ('app', 'config', 'wsgi')))"
    where = installed.run("python", "-c", find).stdout
    assert str(installed.venv) in where and str(REPO_ROOT) not in where
    for packaged in ("migrations/env.py", "migrations/script.py.mako", "migrations/versions/0001_initial_schema.py"):
        assert list((installed.venv / "lib").glob(f"python*/site-packages/app/{packaged}")), packaged
    # A fresh database: the server refuses it and names the fix, never Flask-Migrate's `db init`.
    refused = installed.run("statesman", "-port", str(free_port()), check=False)
    assert refused.returncode != 0
    assert "flask db upgrade" in refused.stderr and not _suggests_init(refused.stderr), refused.stderr
    assert "Traceback" not in refused.stderr


def test_flask_db_upgrade_without_flask_app(installed: Installed) -> None:
    """The installed ``wsgi`` module is what ``flask`` finds without ``FLASK_APP``; ``--app app`` works too."""
    upgraded = installed.run("flask", "db", "upgrade")
    assert not _suggests_init(upgraded.stdout + upgraded.stderr)
    current = installed.run("flask", "--app", "app", "db", "current")
    assert "(head)" in current.stdout, current.stdout + current.stderr
    assert (installed.cwd / "data" / "taco.db").exists()


def test_terraform_applies_through_the_installed_server(
    served: tuple[str, str], terraform: Callable[..., Terraform], workspace: str
) -> None:
    url, token = served
    address = f"{url}/state/acme/{workspace}"
    tf = terraform()
    tf.write(configuration("hello from the wheel", http_backend(address, username="alice", password=token)))
    tf.ok("init", "-input=false")
    tf.ok("apply", "-auto-approve", "-input=false")
    tf.expect(0, "plan", "-detailed-exitcode", "-input=false")
    stored = requests.get(address, auth=("alice", token), timeout=10)
    assert stored.status_code == 200
    assert stored.json()["outputs"]["greeting"]["value"] == "hello from the wheel"
