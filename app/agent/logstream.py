"""A job's log on its way to the server: redacted, then sent in order, in pieces of at most 64 KiB, at least
every half second while there is output, so the Terraform CLI that follows the run sees it nearly live."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import requests

from app.agent.client import AgentApiError, LeaseLost
from app.agent.control import JobControl
from app.agent.redaction import Redactor

log = logging.getLogger("statesman.agent")

MAX_CHUNK = 64 * 1024
FLUSH_SECONDS = 0.5
# Output kept while the server cannot be reached; past this the oldest is dropped (the run goes on regardless).
MAX_BUFFERED = 16 * 1024 * 1024
CLOSE_ATTEMPTS = 5


class LogStream:
    """Collects a job's output from any thread and sends it from one thread of its own."""

    def __init__(
        self,
        send: Callable[[bytes], None],
        redactor: Redactor,
        control: JobControl,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self._send = send
        self._redactor = redactor
        self._control = control
        self._flush_seconds = flush_seconds
        self._buffer = bytearray()
        self._head = 0  # how many bytes were ever taken out of the buffer (sent or dropped)
        self._dropped = 0
        self._lock = threading.Lock()
        self._feeding = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-stream", daemon=True)

    def start(self) -> LogStream:
        """Start sending; returns the stream."""
        self._thread.start()
        return self

    def write(self, data: bytes) -> None:
        """Terraform's output (any piece of it)."""
        with self._feeding:
            released = self._redactor.feed(data)
        if released:
            self._append(released)

    def line(self, text: str) -> None:
        """A line of the agent's own (header, error message), after any unfinished output line."""
        with self._feeding:
            released = self._redactor.flush() + self._redactor.redact(text.encode() + b"\n")
        self._append(released)

    def close(self) -> None:
        """Send everything that is left (a few attempts), then stop the sending thread."""
        with self._feeding:
            rest = self._redactor.flush()
        if rest:
            self._append(rest)
        self._closing.set()
        self._thread.join()

    def _append(self, data: bytes) -> None:
        with self._lock:
            self._buffer += data
            excess = len(self._buffer) - MAX_BUFFERED
            if excess > 0:
                del self._buffer[:excess]
                self._head += excess
                self._dropped += excess

    def _run(self) -> None:
        while not self._closing.wait(self._flush_seconds):
            self._send_buffered()
        for _attempt in range(CLOSE_ATTEMPTS):
            if self._send_buffered() or self._control.lease_lost:
                return
            time.sleep(1.0)
        log.warning("gave up sending the last %d bytes of the job's log", len(self._buffer))

    def _send_buffered(self) -> bool:
        """Send what is buffered, oldest first; True once the buffer is empty."""
        while not self._control.lease_lost:
            with self._lock:
                start, chunk = self._head, bytes(self._buffer[:MAX_CHUNK])
                if self._dropped:
                    log.warning("dropped %d bytes of the job's log the server could not take in time", self._dropped)
                    self._dropped = 0
            if not chunk:
                return True
            try:
                self._send(chunk)
            except LeaseLost as lost:
                self._control.lose_lease(str(lost))
                return False
            except (requests.RequestException, AgentApiError) as exc:
                log.warning("could not send the job's log (will retry): %s", exc)
                return False
            with self._lock:
                sent = start + len(chunk) - self._head  # less when the oldest bytes were dropped meanwhile
                if sent > 0:
                    del self._buffer[:sent]
                    self._head += sent
        return False
