"""``statesman agent``: claim jobs from a Statesman server and run Terraform for them until stopped.

The token comes from ``STATESMAN_AGENT_TOKEN`` or ``--token-file`` (never from the command line, which other users
of the host can read). SIGINT or SIGTERM stops the agent after its current job, which is interrupted (the run
ends errored, the workspace is unlocked); a second signal kills Terraform after a short grace.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import requests

from app.agent.client import AgentApiError, AgentClient, Refused
from app.agent.control import JobControl
from app.agent.job import AgentSettings, InvalidJob, Job, run_job

log = logging.getLogger("statesman.agent")

TOKEN_VARIABLE = "STATESMAN_AGENT_TOKEN"
DEFAULT_POLL_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The agent's command line."""
    parser = argparse.ArgumentParser(
        prog="statesman agent",
        description="Run remote Terraform plans and applies for a Statesman server. "
        f"The agent token is read from {TOKEN_VARIABLE} or --token-file.",
    )
    parser.add_argument("--url", required=True, help="the server's base URL, such as https://statesman.example.com")
    parser.add_argument("--token-file", type=Path, help=f"a file holding the agent token (instead of {TOKEN_VARIABLE})")
    parser.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}", help="default: <hostname>-<pid>")
    parser.add_argument("--work-dir", type=Path, help="where job directories are made (default: the temp dir)")
    parser.add_argument(
        "--terraform-versions-dir",
        type=Path,
        help="holds <version>/terraform for workspaces that pin a version (TERRAFORM_BIN, default terraform on "
        "PATH, runs the others)",
    )
    parser.add_argument("--once", action="store_true", help="exit after one job")
    parser.add_argument(
        "--poll-interval", type=float, default=DEFAULT_POLL_SECONDS, help="seconds between claims when idle"
    )
    return parser.parse_args(argv)


def read_token(token_file: Path | None, environ: dict[str, str] | os._Environ[str]) -> str:
    """The agent token from ``token_file`` or the environment; ``SystemExit`` naming both when neither has one."""
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise SystemExit(f"statesman agent: cannot read the token file {token_file}: {exc.strerror}") from None
    else:
        token = environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise SystemExit(f"statesman agent: no agent token: set {TOKEN_VARIABLE} or pass --token-file")
    return token


class Agent:
    """The claim loop, and the job in progress that a signal stops."""

    def __init__(self, client: AgentClient, settings: AgentSettings, poll_seconds: float) -> None:
        self.client = client
        self.settings = settings
        self.poll_seconds = max(poll_seconds, 0.05)
        self.stopping = threading.Event()
        self._signals = 0
        self._control: JobControl | None = None

    def serve(self, once: bool = False) -> int:
        """Claim and run jobs until stopped (or after one job with ``once``); the process exit status."""
        backoff = self.poll_seconds
        while not self.stopping.is_set():
            try:
                found = self.client.claim(self.settings.name)
            except Refused as refused:
                log.error("the server refused the agent token: %s", refused)
                return 2
            except (requests.RequestException, AgentApiError) as exc:
                log.warning("cannot claim jobs from the server (retrying in %.0f s): %s", backoff, exc)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = self.poll_seconds
            if found is None:
                self.stopping.wait(self.poll_seconds)
                continue
            self.run(found)
            if once:
                return 0
        return 0

    def run(self, found: dict[str, object]) -> None:
        """Run one claimed job."""
        try:
            job = Job.from_json(found)
        except InvalidJob as invalid:
            log.error("the server sent a job this agent cannot run: %s", invalid)
            lease = found.get("lease_id")
            if isinstance(lease, str):
                with contextlib.suppress(requests.RequestException, AgentApiError):
                    self.client.finish(lease, "errored", f"agent {self.settings.name} cannot run this job: {invalid}")
            return
        self._control = control = JobControl(job.timeout_seconds)
        if self.stopping.is_set():
            control.agent_stopping(self.settings.name)
        try:
            run_job(self.client, job, self.settings, control)
        finally:
            self._control = None

    def on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        """First signal: stop after interrupting the current job; second: kill its Terraform after the grace."""
        self._signals += 1
        self.stopping.set()
        control = self._control
        if control is not None:
            control.agent_stopping(self.settings.name, forced=self._signals > 1)


def main(argv: list[str] | None = None, install_signals: Callable[[Agent], None] | None = None) -> None:
    """Entry point of ``statesman agent``."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = read_token(args.token_file, os.environ)
    settings = AgentSettings(
        name=args.name,
        work_dir=args.work_dir,
        versions_dir=args.terraform_versions_dir,
        terraform_bin=os.environ.get("TERRAFORM_BIN") or "terraform",
        environment=dict(os.environ),
    )
    if args.work_dir is not None:
        args.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    agent = Agent(AgentClient(args.url, token), settings, args.poll_interval)
    (install_signals or _install_signals)(agent)
    log.info("agent %s serving %s", settings.name, args.url)
    sys.exit(agent.serve(once=args.once))


def _install_signals(agent: Agent) -> None:
    signal.signal(signal.SIGINT, agent.on_signal)
    signal.signal(signal.SIGTERM, agent.on_signal)
