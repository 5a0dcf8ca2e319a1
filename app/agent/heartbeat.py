"""Keeping a job's lease alive from a thread of its own, and learning from the answers that the run was canceled.

The server expires a lease it has not heard of for ``lease_seconds`` (the run becomes errored and the workspace
is unlocked), so an agent that cannot reach it for that long stops Terraform too: another run may start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from app.agent.client import AgentApiError, LeaseLost, Refused
from app.agent.control import JobControl

log = logging.getLogger("statesman.agent")


class Heartbeat:
    """Sends ``beat()`` every ``interval`` seconds until stopped, and tells ``control`` what the server said."""

    def __init__(
        self, beat: Callable[[], dict[str, Any]], control: JobControl, interval: float, lease_seconds: float
    ) -> None:
        self._beat = beat
        self._control = control
        self._interval = max(interval, 0.1)
        self._lease_seconds = lease_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        """Start beating; returns the heartbeat."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating (the job is done)."""
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        last_contact = time.monotonic()
        while not self._stopped.wait(self._interval) and not self._control.lease_lost:
            try:
                answer = self._beat()
            except (LeaseLost, Refused) as lost:
                # A refused token (revoked meanwhile) can report nothing more either.
                self._control.lose_lease(f"the server no longer accepts this job: {lost}")
                return
            except (requests.RequestException, AgentApiError) as exc:
                log.warning("heartbeat failed: %s", exc)
                if time.monotonic() - last_contact > self._lease_seconds:
                    self._control.lose_lease(f"no contact with the server for over {self._lease_seconds:g} s")
                continue
            last_contact = time.monotonic()
            if answer.get("force_cancel"):
                self._control.force_cancel()
            elif answer.get("cancel"):
                self._control.cancel()
