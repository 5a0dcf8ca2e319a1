"""What may stop a job's Terraform, decided by other threads (heartbeat, log stream, signals) and read by the
process runner: a user's cancel (interrupt only, Terraform stops cleanly), or a reason to stop for sure (a
force-cancel, a lost lease, the run timeout, the agent stopping: interrupt, then kill after a grace period)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CANCELED = "canceled"
ERRORED = "errored"
FINISHED = "finished"


@dataclass(frozen=True)
class Stop:
    """Why a job stops early: the outcome to report (None: the lease is gone, report nothing) and the reason."""

    outcome: str | None
    reason: str
    forced: bool


class JobControl:
    """The stop requests of one job, safe to set from any thread; the first forced reason wins."""

    def __init__(self, timeout_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._timeout = timeout_seconds
        self._deadline = self._clock() + timeout_seconds if timeout_seconds > 0 else None
        self._lock = threading.Lock()
        self._stop: Stop | None = None

    def cancel(self) -> None:
        """The user canceled the run: interrupt Terraform and report ``canceled``."""
        self._set(Stop(CANCELED, "the run was canceled", forced=False))

    def force_cancel(self) -> None:
        """The user force-canceled the run: the server no longer waits for this job."""
        self._set(Stop(CANCELED, "the run was force-canceled", forced=True))

    def lose_lease(self, reason: str) -> None:
        """The server does not know the job any more (409/404, or no contact for a whole lease)."""
        self._set(Stop(None, reason, forced=True))

    def agent_stopping(self, agent: str, forced: bool = False) -> None:
        """The agent process was asked to stop."""
        self._set(Stop(ERRORED, f"agent {agent} was stopped before the run finished", forced=forced))

    def check_deadline(self) -> None:
        """Stop for sure once the run timeout has passed."""
        if self._deadline is not None and self._clock() >= self._deadline:
            self._set(Stop(ERRORED, f"run timed out after {self._timeout:g} s", forced=True))

    @property
    def stop(self) -> Stop | None:
        """Why the job stops, or None while it may go on."""
        with self._lock:
            return self._stop

    @property
    def lease_lost(self) -> bool:
        """True when nothing more may be reported for the job."""
        stop = self.stop
        return stop is not None and stop.outcome is None

    def _set(self, stop: Stop) -> None:
        with self._lock:
            current = self._stop
            if current is not None and current.outcome is None:
                return  # a lost lease stays lost
            if current is None or stop.outcome is None or (stop.forced and not current.forced):
                self._stop = stop
