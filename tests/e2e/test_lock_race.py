"""Sixteen client processes race to LOCK one workspace on a 4-worker server: exactly one wins every round."""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import queue
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.factories import lock_info

if TYPE_CHECKING:  # spawned racers import this module: keep the app and its drivers out of their start-up
    from tests.live_server import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RACERS = 16
ROUNDS = 50
WAIT_SECONDS = 60


def _headers(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Content-MD5": base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode(),
    }


def racer(racer_no: int, url: str, token: str, barrier: Barrier, commands: Queue[Any], results: Queue[Any]) -> None:
    """One client process: on ``lock`` wait for the others at the barrier, then LOCK; on ``unlock`` UNLOCK."""
    sent = b""
    with requests.Session() as session:
        session.auth = ("racer", token)
        results.put(("ready", -1, racer_no, b"", None, b""))
        while True:
            command, round_no = commands.get(timeout=WAIT_SECONDS)
            if command == "stop":
                return
            try:
                if command == "lock":
                    sent = lock_info(f"{round_no}-{racer_no}", f"racer-{racer_no}@e2e")
                    barrier.wait(timeout=WAIT_SECONDS)
                    reply = session.request("LOCK", url, data=sent, headers=_headers(sent), timeout=WAIT_SECONDS)
                else:
                    reply = session.request("UNLOCK", url, data=sent, headers=_headers(sent), timeout=WAIT_SECONDS)
                results.put((command, round_no, racer_no, sent, reply.status_code, reply.content))
            except Exception as exc:  # reported to the parent, which fails the test with it
                results.put((command, round_no, racer_no, sent, None, repr(exc).encode()))


def _collect(results: Queue[Any], count: int) -> list[tuple[Any, ...]]:
    try:
        return [results.get(timeout=WAIT_SECONDS) for _ in range(count)]
    except queue.Empty:
        pytest.fail(f"racers did not report within {WAIT_SECONDS}s")


def test_sixteen_processes_race_for_one_lock(live_server: LiveServer) -> None:
    token = live_server.create_token("acme", None)  # an organization token: locks, not RBAC, are under test
    url = f"{live_server.url}/state/acme/race"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(RACERS)
    results: Queue[Any] = context.Queue()
    commands: list[Queue[Any]] = [context.Queue() for _ in range(RACERS)]
    processes = [
        context.Process(target=racer, args=(n, url, token, barrier, commands[n], results), daemon=True)
        for n in range(RACERS)
    ]
    for process in processes:
        process.start()
    winners: list[int] = []
    slowest = 0.0
    try:
        assert {r[0] for r in _collect(results, RACERS)} == {"ready"}
        started = time.monotonic()
        for round_no in range(ROUNDS):
            round_started = time.monotonic()
            for inbox in commands:
                inbox.put(("lock", round_no))
            replies = _collect(results, RACERS)
            assert {(r[0], r[1]) for r in replies} == {("lock", round_no)}
            assert all(status is not None and status < 500 for *_, status, _ in replies), replies
            won = [r for r in replies if r[4] == 200]
            assert len(won) == 1, f"round {round_no}: {len(won)} winners: {[(r[2], r[4], r[5]) for r in replies]}"
            _, _, winner, winner_sent, _, _ = won[0]
            winner_id = json.loads(winner_sent)["ID"]
            for _, _, loser, _, status, body in replies:
                if loser == winner:
                    continue
                assert status == 423, f"round {round_no}, racer {loser}: {status} {body!r}"
                assert json.loads(body)["ID"] == winner_id
                assert body == winner_sent, f"round {round_no}: 423 body is not the winner's LockInfo: {body!r}"
            winners.append(winner)
            commands[winner].put(("unlock", round_no))
            [(command, _, _, _, status, body)] = _collect(results, 1)
            assert (command, status) == ("unlock", 200), body
            slowest = max(slowest, time.monotonic() - round_started)
        elapsed = time.monotonic() - started
    finally:
        for inbox in commands:
            inbox.put(("stop", -1))
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        for channel in (*commands, results):
            channel.close()
            channel.join_thread()
    distinct = len(set(winners))
    print(
        f"\nlock race: {ROUNDS} rounds x {RACERS} processes against 4 workers in {elapsed:.1f}s "
        f"(slowest round {slowest:.2f}s), {distinct} distinct winners, no 5xx"
    )
    final = requests.get(f"{live_server.url}/state/acme/race", auth=("racer", token), timeout=10)
    final.close()
    assert final.status_code == 404  # locked and unlocked only: still no state
