"""Running a command for a job: output streamed, a cancel interrupts it, a forced stop kills it after the grace."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

from app.agent.control import ERRORED, JobControl
from app.agent.process import run_command

# Prints, then waits for SIGINT; exits 3 on it (as Terraform exits non-zero after an interrupt), or ignores it.
SCRIPT = """
import signal, sys, time
mode = sys.argv[1]
def interrupted(*_):
    print("interrupted", flush=True)
    if mode == "graceful":
        sys.exit(3)
signal.signal(signal.SIGINT, interrupted)
print("started", flush=True)
sys.stderr.write("to stderr\\n"); sys.stderr.flush()
for _ in range(600):
    time.sleep(0.05)
"""


def run(tmp_path: Path, mode: str, control: JobControl, grace: float = 10.0):
    output: list[bytes] = []
    started = time.monotonic()
    ended = run_command(
        [sys.executable, "-c", SCRIPT, mode],
        cwd=tmp_path,
        environment={"PATH": "/usr/bin:/bin"},
        output=output.append,
        control=control,
        grace_seconds=grace,
    )
    return ended, b"".join(output), time.monotonic() - started


def test_output_of_both_streams_arrives_and_the_exit_code_is_kept(tmp_path: Path) -> None:
    captured: list[bytes] = []
    ended = run_command(
        [sys.executable, "-c", "import sys; print('out'); sys.stderr.write('err\\n'); sys.exit(2)"],
        cwd=tmp_path,
        environment={},
        output=captured.append,
        control=JobControl(0),
    )
    assert ended.code == 2 and not ended.interrupted
    assert sorted(b"".join(captured).split()) == [b"err", b"out"]


def test_stdout_can_go_to_a_file_while_stderr_is_streamed(tmp_path: Path) -> None:
    out = io.BytesIO()
    target = tmp_path / "out.json"
    with target.open("wb") as stdout:
        ended = run_command(
            [sys.executable, "-c", "import sys; print('{}'); sys.stderr.write('warn\\n')"],
            cwd=tmp_path,
            environment={},
            output=out.write,
            control=JobControl(0),
            stdout=stdout,
        )
    assert ended.code == 0 and target.read_bytes() == b"{}\n" and out.getvalue() == b"warn\n"


def test_a_cancel_interrupts_once_and_waits_for_the_command_to_stop(tmp_path: Path) -> None:
    control = JobControl(0)
    threading.Timer(0.5, control.cancel).start()
    ended, output, _ = run(tmp_path, "graceful", control)
    assert ended.interrupted and ended.code == 3
    assert b"started" in output and b"to stderr" in output and b"interrupted" in output


def test_a_forced_stop_kills_a_command_that_ignores_the_interrupt_after_the_grace(tmp_path: Path) -> None:
    control = JobControl(0)
    threading.Timer(0.5, control.force_cancel).start()
    ended, output, took = run(tmp_path, "stubborn", control, grace=1.0)
    assert ended.interrupted and ended.code == -9 and b"interrupted" in output
    assert 1.0 <= took < 10


def test_the_run_timeout_stops_the_command_and_says_so(tmp_path: Path) -> None:
    control = JobControl(0.5)
    ended, _, took = run(tmp_path, "stubborn", control, grace=0.5)
    assert ended.interrupted and ended.code == -9 and took < 10
    assert control.stop is not None and control.stop.outcome == ERRORED
    assert control.stop.reason == "run timed out after 0.5 s"


def test_the_first_forced_reason_wins_and_a_lost_lease_stays_lost() -> None:
    control = JobControl(0)
    control.cancel()
    control.force_cancel()
    assert control.stop is not None and control.stop.forced and control.stop.reason == "the run was force-canceled"
    control.agent_stopping("a1", forced=True)
    assert control.stop.reason == "the run was force-canceled"
    control.lose_lease("409")
    control.cancel()
    assert control.lease_lost and control.stop.reason == "409"
