"""The ``statesman`` command as a user starts it (no test configuration added), for the quick-start tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.live_server import _OUR_PREFIXES, REPO_ROOT


def user_environment(**extra: str) -> dict[str, str]:
    """The caller's environment without any of our settings, with this checkout first on the import path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OUR_PREFIXES) and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


@dataclass
class Launched:
    """A running ``statesman`` command and its combined output."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, url: str, timeout: float = 120.0, verify: str | bool = True) -> None:
        """Wait until ``url`` answers (any status)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"statesman exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            try:
                requests.get(url, timeout=1, verify=verify)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"{url} did not answer within {timeout}s:\n{self.output()[-3000:]}")

    def stop(self) -> int:
        """SIGTERM, as a service manager would; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode


def launch(args: list[str], cwd: Path, env: dict[str, str]) -> Launched:
    """Start the ``statesman`` console script of this environment in ``cwd``."""
    script = Path(sys.executable).with_name("statesman")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "app.cli.server"]
    log = cwd / "statesman.log"
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [*command, *args], cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Launched(process, log)
