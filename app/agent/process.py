"""Running one Terraform command: its merged output streamed as it comes, and stopped when the job must stop.

Terraform runs in a session of its own, so the agent's terminal signals do not reach it unasked, and a stop reaches
its provider plugins too (the whole process group): SIGINT first, which Terraform answers by finishing the
operations in flight and writing its state, then SIGKILL after the grace period when the stop is forced.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app.agent.control import JobControl

DEFAULT_GRACE_SECONDS = 10.0
READ_SIZE = 64 * 1024
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Exit:
    """How a command ended: its exit code (negative: killed by that signal) and whether the agent interrupted it."""

    code: int
    interrupted: bool


def run_command(
    command: list[str],
    *,
    cwd: Path,
    environment: Mapping[str, str],
    output: Callable[[bytes], None],
    control: JobControl,
    stdout: IO[bytes] | None = None,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> Exit:
    """Run ``command`` to its end; ``output`` gets stderr (and stdout, unless ``stdout`` captures it) in pieces."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(environment),
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE if stdout is not None else subprocess.STDOUT,
        start_new_session=True,
    )
    stream = process.stderr if stdout is not None else process.stdout
    assert stream is not None
    reader = threading.Thread(target=_pump, args=(stream, output), name="terraform-output", daemon=True)
    reader.start()
    try:
        interrupted = _wait(process, control, grace_seconds)
    finally:
        _signal_group(process.pid, signal.SIGKILL)  # plugins a crashed or killed Terraform left behind
        process.wait()  # reaped only now, so the group id above cannot have been reused
        reader.join(timeout=5)
    return Exit(process.returncode, interrupted)


def _wait(process: subprocess.Popen[bytes], control: JobControl, grace_seconds: float) -> bool:
    """Wait for the process, interrupting it when the job must stop and killing it after a forced stop's grace."""
    interrupted_at: float | None = None
    while not _exited(process.pid):
        time.sleep(POLL_SECONDS)
        control.check_deadline()
        stop = control.stop
        if stop is None:
            continue
        now = time.monotonic()
        if interrupted_at is None:
            _signal_group(process.pid, signal.SIGINT)
            interrupted_at = now
        elif stop.forced and now - interrupted_at >= grace_seconds:
            _signal_group(process.pid, signal.SIGKILL)
    return interrupted_at is not None


def _exited(pid: int) -> bool:
    """True once the process has ended, without reaping it: its process group id stays ours to signal."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _pump(stream: IO[bytes], output: Callable[[bytes], None]) -> None:
    with stream:
        while chunk := os.read(stream.fileno(), READ_SIZE):
            output(chunk)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)
