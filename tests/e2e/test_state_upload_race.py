"""On a live 4-worker server (SQLite, then PostgreSQL metadata): the state and JSON upload PUTs of Terraform >= 1.6
in parallel and in both orders, each retried, never see 404 or 5xx; sixteen writers sharing one lock ID get one
200 and fifteen 409s per round, never a 503."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.backends import postgres_url, scratch_postgres_database
from tests.live_server import LiveServer, start_server
from tests.services import require_service

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROUNDS = 20
ORDERS = ("together", "state-first", "json-first")
WRITERS = 16
WRITE_ROUNDS = 5
MEDIA_TYPE = "application/vnd.api+json"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A 4-worker server whose metadata lives in SQLite or in PostgreSQL."""
    with contextlib.ExitStack() as stack:
        extra: dict[str, str] = {}
        if request.param == "postgres":
            require_service("postgres")
            extra["DATABASE_URL"] = postgres_url(stack.enter_context(scratch_postgres_database()))
        live = start_server(tmp_path / "server", workers=4, extra_env=extra)
        stack.callback(live.stop)
        yield live


def state(serial: int, lineage: str = "race-lineage", **outputs: object) -> bytes:
    document = {
        "version": 4,
        "terraform_version": "1.11.4",
        "serial": serial,
        "lineage": lineage,
        "outputs": {name: {"value": value, "type": "string"} for name, value in outputs.items()},
        "resources": [],
    }
    return json.dumps(document, indent=2).encode()


def json_state(serial: int) -> bytes:
    return json.dumps({"format_version": "1.0", "values": {"outputs": {}, "root_module": {"serial": serial}}}).encode()


def together(calls: list[Callable[[], int]]) -> list[int]:
    """Statuses of ``calls`` run in threads released at once (each on its own connection)."""
    barrier = threading.Barrier(len(calls))
    results: list[int | BaseException] = [RuntimeError("no reply")] * len(calls)

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[n] = calls[n]()
        except BaseException as exc:  # reported below
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    return [r for r in results if not isinstance(r, BaseException)]


class Tfc:
    """Just enough of a TFE client: JSON:API calls with a bearer token."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.base = f"{server.url}/api/v2"
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": MEDIA_TYPE}
        data = None if body is None else json.dumps(body)
        return requests.request(method, f"{self.base}/{path}", data=data, headers=headers, timeout=60)

    def put(self, url: str, data: bytes) -> Callable[[], int]:
        """A PUT to a signed URL the way go-tfe sends one (its default headers include the token)."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/octet-stream"}
        return lambda: requests.put(url, data=data, headers=headers, timeout=60).status_code


def test_parallel_uploads_in_both_orders_with_retries(server: LiveServer) -> None:
    api = Tfc(server, server.create_token("acme", "alice"))
    created = api.call("POST", "organizations/acme/workspaces", {"data": {"attributes": {"name": "uploads"}}})
    assert created.status_code == 201, created.text
    workspace_id = created.json()["data"]["id"]
    assert api.call("POST", f"workspaces/{workspace_id}/actions/lock", {"reason": "e2e"}).status_code == 200
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    for round_no in range(ROUNDS):
        order = ORDERS[round_no % len(ORDERS)]
        serial = round_no + 1
        body, copy = state(serial, greeting=f"hi-{serial}"), json_state(serial)
        outputs = json.dumps({"greeting": {"sensitive": False, "value": f"hi-{serial}", "type": "string"}}).encode()
        attributes = {
            "serial": serial,
            "md5": hashlib.md5(body).hexdigest(),
            "lineage": "race-lineage",
            "json-state-outputs": base64.b64encode(outputs).decode(),
        }
        pending = api.call("POST", f"workspaces/{workspace_id}/state-versions", {"data": {"attributes": attributes}})
        assert pending.status_code == 201, pending.text
        version = pending.json()["data"]
        upload = version["attributes"]["hosted-state-upload-url"]
        json_upload = version["attributes"]["hosted-json-state-upload-url"]
        state_puts = [api.put(upload, body), api.put(upload, body)]  # a PUT and a retry racing it
        json_puts = [api.put(json_upload, copy), api.put(json_upload, copy)]
        if order == "together":
            replies = together(state_puts + json_puts)
        elif order == "state-first":
            replies = together(state_puts) + together(json_puts)
        else:
            replies = together(json_puts) + together(state_puts)
        replies += [api.put(upload, body)(), api.put(json_upload, copy)()]  # late retries
        statuses.update(replies)
        assert replies == [200] * 6, (round_no, order, replies)
        shown = api.call("GET", f"state-versions/{version['id']}").json()["data"]["attributes"]
        assert shown["status"] == "finalized", (round_no, order, shown["status"])
        current = api.call("GET", f"workspaces/{workspace_id}/current-state-version").json()["data"]
        assert current["id"] == version["id"], (round_no, order)
        assert requests.get(shown["hosted-state-download-url"], timeout=60).content == body
        assert requests.get(shown["hosted-json-state-download-url"], timeout=60).content == copy
        other = requests.put(upload, data=state(serial, greeting="other"), timeout=60)
        assert other.status_code == 409, other.text
    elapsed = time.monotonic() - started
    assert statuses == Counter({200: 6 * ROUNDS}), statuses
    assert api.call("POST", f"workspaces/{workspace_id}/actions/unlock").status_code == 200
    print(f"\n{ROUNDS} rounds, {sum(statuses.values())} upload PUTs, statuses {dict(statuses)}, {elapsed:.1f}s")


def test_sixteen_writers_with_one_lock_id(server: LiveServer) -> None:
    token = server.create_token("acme", None)
    url = f"{server.url}/state/acme/race"
    lock = json.dumps({"ID": "shared", "Operation": "OperationTypeApply", "Who": "e2e", "Version": "1.9.0"})
    assert requests.request("LOCK", url, data=lock, auth=("e2e", token), timeout=60).status_code == 200
    tally: Counter[int] = Counter()
    for round_no in range(WRITE_ROUNDS):
        serial = round_no + 1
        bodies = [state(serial, writer=f"w{n}") for n in range(WRITERS)]

        def write(n: int, sent: list[bytes] = bodies) -> Callable[[], int]:
            return lambda: requests.post(f"{url}?ID=shared", data=sent[n], auth=("e2e", token), timeout=60).status_code

        replies = together([write(n) for n in range(WRITERS)])
        tally.update(replies)
        assert sorted(replies) == [200] + [409] * (WRITERS - 1), (round_no, replies)
        winner = replies.index(200)
        assert together([write(n) for n in range(WRITERS)]) == [200 if n == winner else 409 for n in range(WRITERS)]
    assert tally == Counter({200: WRITE_ROUNDS, 409: WRITE_ROUNDS * (WRITERS - 1)})
    print(f"\n{WRITERS} writers x {WRITE_ROUNDS} rounds: {dict(tally)}")
