"""A real server process (the ``statesman`` launcher, gunicorn, several workers) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.conftest import TEST_KEY

REPO_ROOT = Path(__file__).resolve().parent.parent
_OUR_PREFIXES = ("STATESMAN_", "OPENTACO_", "STORAGE_", "LOCK_", "KMS_", "AUTH_", "VAULT_", "REDIS_", "TLS_")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(data_dir: Path, port: int, workers: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment: ours cleared, then a production config on ``data_dir``."""
    import base64

    env = {k: v for k, v in os.environ.items() if not k.startswith(_OUR_PREFIXES)}
    env.update(
        {
            "STATESMAN_DATA_DIR": str(data_dir),
            "LISTEN_ADDR": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(workers),
            "KMS_KEY": base64.b64encode(TEST_KEY).decode(),
            "OPENTACO_SECRET_KEY": "e2e-signing-secret",
            "FLASK_APP": "app",
            "LOG_LEVEL": "warning",
        }
    )
    env.update(extra or {})
    return env


@dataclass
class LiveServer:
    """A running server; ``url`` is its base URL."""

    data_dir: Path
    port: int
    env: dict[str, str]
    log_path: Path
    scheme: str = "http"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}" if self.scheme == "http" else f"https://localhost:{self.port}"

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a ``flask`` admin command against the same configuration."""
        result = subprocess.run(
            [sys.executable, "-m", "flask", *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
        return result

    def create_token(self, org: str = "acme", user: str | None = "alice", *flags: str) -> str:
        """Create org, user and membership if needed, then a token; returns the secret."""
        self.flask("orgs", "create", org, check=False)
        command = ["tokens", "create", "--org", org, *flags]
        if user is not None:
            self.flask("users", "create", user, "--org", org)
            command += ["--user", user]
        return self.flask(*command).stdout.strip()

    def start(self, timeout: float = 120.0) -> None:
        """Start the launcher and wait until ``/healthz`` answers."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli.server"],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log_path.read_text()[-3000:]}")
            try:
                requests.get(f"{self.url}/healthz", timeout=1, verify=self.env.get("SSL_CERT_FILE", True))
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout}s: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """Graceful stop of gunicorn and its workers."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """``kill -9`` of the whole process group (master and every worker)."""
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            # SIGTERM goes to the master, which stops its workers gracefully; SIGKILL hits the whole group.
            if signum == signal.SIGKILL:
                os.killpg(self.process.pid, signum)
            else:
                os.kill(self.process.pid, signum)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_server(
    data_dir: Path, workers: int = 4, extra_env: dict[str, str] | None = None, scheme: str = "http"
) -> LiveServer:
    """Migrate a fresh database in ``data_dir`` and start a server on a free port."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = LiveServer(
        data_dir, port, server_environment(data_dir, port, workers, extra_env), data_dir / "server.log", scheme
    )
    server.flask("db", "upgrade")
    server.start()
    return server
