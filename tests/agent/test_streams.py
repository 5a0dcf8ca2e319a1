"""The log stream (redacted, ordered, bounded pieces, retried) and the heartbeat (cancel, lost lease)."""

from __future__ import annotations

import threading
import time

import requests

from app.agent.client import AgentApiError, LeaseLost, Refused
from app.agent.control import JobControl
from app.agent.heartbeat import Heartbeat
from app.agent.logstream import MAX_CHUNK, LogStream
from app.agent.redaction import Redactor


class Server:
    """A fake log endpoint: fails the first ``failures`` calls, then keeps what it gets."""

    def __init__(self, failures: int = 0, lost: bool = False) -> None:
        self.received: list[bytes] = []
        self.failures = failures
        self.lost = lost

    def send(self, data: bytes) -> None:
        if self.lost:
            raise LeaseLost(409, "lease over")
        if self.failures:
            self.failures -= 1
            raise requests.ConnectionError("down")
        self.received.append(data)


def test_output_is_redacted_ordered_and_sent_in_pieces_of_at_most_64_kib() -> None:
    server = Server()
    control = JobControl(0)
    stream = LogStream(server.send, Redactor(["s3cret"]), control, flush_seconds=0.05).start()
    stream.line("Terraform v1.0.3")
    for index in range(2000):
        stream.write(f"line {index} with s3c".encode())
        stream.write(f"ret {'x' * 100}\n".encode())
    stream.write(b"unfinished s3cret")
    stream.close()
    text = b"".join(server.received)
    assert all(len(piece) <= MAX_CHUNK for piece in server.received) and len(server.received) > 1
    assert text.startswith(b"Terraform v1.0.3\nline 0 with *** xxx")
    assert text.endswith(b"line 1999 with *** " + b"x" * 100 + b"\nunfinished ***")
    assert b"s3cret" not in text


def test_sending_is_retried_after_network_errors() -> None:
    server = Server(failures=3)
    stream = LogStream(server.send, Redactor([]), JobControl(0), flush_seconds=0.05).start()
    stream.line("kept")
    time.sleep(0.4)
    stream.close()
    assert b"".join(server.received) == b"kept\n"


def test_a_lost_lease_stops_the_stream_and_the_job() -> None:
    control = JobControl(0)
    stream = LogStream(Server(lost=True).send, Redactor([]), control, flush_seconds=0.05).start()
    stream.line("too late")
    stream.close()
    assert control.lease_lost


def beating(answers: list[object], lease_seconds: float = 30) -> JobControl:
    """Run a heartbeat over ``answers`` (dicts to return, exceptions to raise) until they are used up."""
    control = JobControl(0)
    done = threading.Event()

    def beat() -> dict[str, object]:
        if not answers:
            done.set()
            return {"cancel": False}
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, dict)
        return answer

    heartbeat = Heartbeat(beat, control, interval=0.01, lease_seconds=lease_seconds).start()
    deadline = time.monotonic() + 5
    while not done.is_set() and not control.lease_lost and time.monotonic() < deadline:
        time.sleep(0.01)
    heartbeat.stop()
    return control


def test_the_heartbeat_passes_on_a_cancel_and_a_force_cancel() -> None:
    control = beating([{"cancel": False}, {"cancel": True}])
    assert control.stop is not None and control.stop.outcome == "canceled" and not control.stop.forced
    control = beating([{"cancel": True, "force_cancel": True}])
    assert control.stop is not None and control.stop.forced


def test_the_heartbeat_notices_a_lost_lease_or_a_revoked_token() -> None:
    assert beating([LeaseLost(409, "over")]).lease_lost
    assert beating([Refused(401, "revoked")]).lease_lost


def test_no_contact_for_a_whole_lease_counts_as_a_lost_lease() -> None:
    assert not beating([requests.ConnectionError("down"), AgentApiError(502, "bad gateway")]).lease_lost
    control = beating([requests.ConnectionError("down")] * 30, lease_seconds=0.05)
    assert control.lease_lost and "no contact" in (control.stop.reason if control.stop else "")
