"""Sixteen writers holding the same lock ID race to store a state: one wins, the others get a 409, never a 5xx."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import StateVersion
from tests.factories import basic, lock_info, make_token

WRITERS = 16
ROUNDS = 5
PATH = "/state/acme/race"


def racing_state(serial: int, writer: int) -> bytes:
    """A state only this writer sends in this round (same serial as its rivals, different bytes)."""
    document = {
        "version": 4,
        "terraform_version": "1.9.0",
        "serial": serial,
        "lineage": "race-lineage",
        "outputs": {"writer": {"value": f"w{writer}", "type": "string"}},
        "resources": [],
    }
    return json.dumps(document, indent=2).encode()


def race(count: int, send: Callable[[int], tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Run ``send(n)`` in ``count`` threads released together; their (status, body) in writer order."""
    barrier = threading.Barrier(count)
    results: list[tuple[int, bytes] | BaseException] = [RuntimeError("no reply")] * count

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[n] = send(n)
        except BaseException as exc:  # reported below, with the others' results
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    return [r for r in results if not isinstance(r, BaseException)]


def post(app: Flask, token: str, body: bytes, lock_id: str) -> tuple[int, bytes]:
    headers = {**basic(token), "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}
    response = app.test_client().post(f"{PATH}?ID={lock_id}", data=body, headers=headers)
    return response.status_code, response.data


def versions(app: Flask) -> list[tuple[int, int]]:
    with app.app_context():
        rows = db.session.scalars(db.select(StateVersion).where(StateVersion.status == "finalized"))
        return sorted((v.number, v.serial) for v in rows)


def test_loser_of_a_write_race_gets_409_and_retries_of_the_winner_stay_200(app: Flask, client: FlaskClient) -> None:
    token = make_token(app)
    assert client.open(PATH, method="LOCK", data=lock_info("shared"), headers=basic(token)).status_code == 200
    tally: dict[int, int] = {}
    for round_no in range(ROUNDS):
        serial = round_no + 1
        bodies = [racing_state(serial, n) for n in range(WRITERS)]
        replies = race(WRITERS, lambda n, sent=bodies: post(app, token, sent[n], "shared"))
        for status, _ in replies:
            tally[status] = tally.get(status, 0) + 1
        assert all(status in (200, 409) for status, _ in replies), replies
        winners = [n for n, (status, _) in enumerate(replies) if status == 200]
        assert len(winners) == 1, replies
        for status, body in replies:
            if status == 409:
                message = json.loads(body)["error"]
                assert f"serial {serial}" in message, message
        current = client.get(PATH, headers=basic(token))
        assert current.data == bodies[winners[0]]
        # every writer retries its own bytes: the winner's retry is a success, the losers stay refused
        retried = race(WRITERS, lambda n, sent=bodies: post(app, token, sent[n], "shared"))
        assert [status for status, _ in retried] == [200 if n in winners else 409 for n in range(WRITERS)], retried
    assert versions(app) == [(n, n) for n in range(1, ROUNDS + 1)]
    assert tally == {200: ROUNDS, 409: ROUNDS * (WRITERS - 1)}


def test_identical_concurrent_writes_all_succeed_and_store_one_version(app: Flask, client: FlaskClient) -> None:
    token = make_token(app)
    assert client.open(PATH, method="LOCK", data=lock_info("shared"), headers=basic(token)).status_code == 200
    body = racing_state(1, 0)
    replies = race(WRITERS, lambda n: post(app, token, body, "shared"))
    assert [status for status, _ in replies] == [200] * WRITERS, replies
    assert versions(app) == [(1, 1)]
