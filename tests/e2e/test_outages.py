"""Backend outages against a real server process: the lock backend, the storage and the metadata database.

One server (2 gunicorn workers) runs on PostgreSQL metadata, S3 storage and Redis locks, and each test takes one
of them away. During an outage every affected request must answer 503 naming the failing backend (Terraform
retries 5xx), never 500 or 400; nothing may change; and once the backend is back the same server serves the old
state exactly and accepts the next write without a restart. Shared services are never stopped: Redis is a
private ``redis-server``, S3 (moto) and PostgreSQL are reached through proxies that the tests cut and restore.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
import sqlalchemy as sa

from tests.e2e.backends import (
    MotoS3,
    PrivateRedis,
    TcpProxy,
    body_headers,
    postgres_url,
    scratch_postgres_database,
    start_live_server,
    state_body,
)
from tests.factories import lock_info
from tests.live_server import LiveServer
from tests.services import POSTGRES_URL, require_service, services_required

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ORG = "outage"


@dataclass
class Stack:
    """The server and the backends it depends on, each of which a test can take away."""

    server: LiveServer
    token: str
    redis: PrivateRedis
    s3: MotoS3
    s3_proxy: TcpProxy
    database: str
    database_proxy: TcpProxy

    def heal(self) -> None:
        """Bring every backend back (after a test, whether it passed or not)."""
        self.s3_proxy.restore()
        self.database_proxy.restore()
        if self.redis.process is None or self.redis.process.poll() is not None:
            self.redis.start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_service("postgres")
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed (the Redis outage needs a private one)"
        if services_required():
            pytest.fail(f"{message} and STATESMAN_REQUIRE_SERVICES=1")
        pytest.skip(message)
    with contextlib.ExitStack() as cleanup:
        redis_server = PrivateRedis()
        cleanup.callback(redis_server.stop)
        redis_server.start()
        s3 = MotoS3()
        cleanup.callback(s3.stop)
        s3_proxy = TcpProxy("127.0.0.1", s3.port)
        cleanup.callback(s3_proxy.close)
        postgres = sa.make_url(POSTGRES_URL)
        database_proxy = TcpProxy(postgres.host or "127.0.0.1", postgres.port or 5432)
        cleanup.callback(database_proxy.close)
        database = cleanup.enter_context(scratch_postgres_database())
        env = {
            "DATABASE_URL": postgres_url(database, port=database_proxy.port),
            "LOCK_BACKEND": "redis",
            "REDIS_URL": redis_server.url,
            **s3.server_env(endpoint=f"http://127.0.0.1:{s3_proxy.port}"),
        }
        server = start_live_server(tmp_path_factory.mktemp("outages"), workers=2, extra_env=env)
        cleanup.callback(server.stop)
        token = server.create_token(ORG, None)  # an organization token: no user, so no roles needed
        yield Stack(server, token, redis_server, s3, s3_proxy, database, database_proxy)


class Client:
    """Terraform's http backend calls against one workspace; counts every status it gets."""

    def __init__(self, stack: Stack, workspace: str) -> None:
        self.base = stack.server.url
        self.url = f"{stack.server.url}/state/{ORG}/{workspace}"
        self.session = requests.Session()
        self.session.auth = ("terraform", stack.token)
        self.statuses: Counter[int] = Counter()

    def call(self, method: str, url: str | None = None, **kwargs: object) -> requests.Response:
        response = self.session.request(method, url or self.url, timeout=60, **kwargs)  # type: ignore[arg-type]
        self.statuses[response.status_code] += 1
        return response

    def lock(self, info: bytes) -> requests.Response:
        return self.call("LOCK", data=info, headers=body_headers(info))

    def unlock(self, info: bytes) -> requests.Response:
        return self.call("UNLOCK", data=info, headers=body_headers(info))

    def write(self, body: bytes, lock_id: str | None = None) -> requests.Response:
        return self.call("POST", params={"ID": lock_id} if lock_id else None, data=body, headers=body_headers(body))

    def get(self) -> requests.Response:
        return self.call("GET")

    def readyz(self) -> requests.Response:
        return self.call("GET", f"{self.base}/readyz")

    def apply(self, body: bytes) -> None:
        """A whole ``terraform apply`` write: LOCK, GET, POST with the lock ID, UNLOCK; every step must succeed."""
        info = lock_info(uuid.uuid4().hex, "alice@e2e")
        assert self.lock(info).status_code == 200
        assert self.get().status_code in (200, 404)
        written = self.write(body, json.loads(info)["ID"])
        assert written.status_code == 200, written.text
        assert self.unlock(info).status_code == 200


@pytest.fixture
def client(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Client]:
    """A client on a workspace of the test's own; every backend is healed afterwards."""
    client = Client(stack, request.node.name.removeprefix("test_")[:60].replace("_", "-"))
    try:
        yield client
    finally:
        client.session.close()
        stack.heal()


def assert_unavailable(response: requests.Response, backend: str) -> None:
    """503 with a message that names ``backend``."""
    assert response.status_code == 503, (response.status_code, response.text)
    message = response.json()["error"]
    assert f"{backend} backend unavailable" in message, message


def assert_not_ready(client: Client, part: str, backend: str) -> None:
    """/readyz answers 503 and names ``part`` (and only it) as failing."""
    ready = client.readyz()
    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert (checks[part]["status"], checks[part]["backend"]) == ("error", backend), checks
    assert {name for name, check in checks.items() if check["status"] != "ok"} == {part}, checks


def assert_only_success_or_503(client: Client) -> None:
    """A backend fault is never a 500 (a bug) or a 400 (the client's fault)."""
    assert set(client.statuses) <= {200, 503}, client.statuses


def test_redis_lock_outage_answers_503_and_recovers(stack: Stack, client: Client) -> None:
    lineage = str(uuid.uuid4())
    first = state_body(1, lineage, phase="before")
    client.apply(first)

    stack.redis.stop()
    client.statuses.clear()
    info = lock_info(uuid.uuid4().hex, "alice@e2e")
    assert_unavailable(client.lock(info), "redis lock")
    assert_unavailable(client.write(state_body(2, lineage, phase="during")), "redis lock")
    assert_unavailable(client.unlock(info), "redis lock")
    assert_not_ready(client, "locks", "redis")
    during = client.get()  # reads need no lock
    assert (during.status_code, during.content) == (200, first)
    assert_only_success_or_503(client)

    stack.redis.start()  # an empty Redis: nothing was locked when it went away
    assert client.readyz().status_code == 200
    assert client.get().content == first
    second = state_body(2, lineage, phase="after")
    client.apply(second)
    assert client.get().content == second


def test_s3_outage_answers_503_and_keeps_the_previous_state(stack: Stack, client: Client) -> None:
    lineage = str(uuid.uuid4())
    first = state_body(1, lineage, phase="before")
    client.apply(first)
    objects = stack.s3.keys()  # moto directly, not through the proxy
    versions = _table_counts(stack.database)["state_versions"]

    stack.s3_proxy.cut()
    client.statuses.clear()
    info = lock_info(uuid.uuid4().hex, "alice@e2e")
    lock_id = json.loads(info)["ID"]
    assert client.lock(info).status_code == 200  # locks are in Redis, which is up
    assert_unavailable(client.get(), "s3 storage")
    assert_unavailable(client.write(state_body(2, lineage, phase="during"), lock_id), "s3 storage")
    assert client.unlock(info).status_code == 200
    assert_not_ready(client, "storage", "s3")
    assert_only_success_or_503(client)

    stack.s3_proxy.restore()
    assert stack.s3.keys() == objects  # nothing half-written behind the outage
    assert _table_counts(stack.database)["state_versions"] == versions
    assert client.readyz().status_code == 200
    after = client.get()
    assert (after.status_code, after.content) == (200, first)
    assert after.headers["Content-MD5"] == body_headers(first)["Content-MD5"]
    second = state_body(2, lineage, phase="after")
    client.apply(second)
    assert client.get().content == second


def test_metadata_database_outage_answers_503_and_changes_nothing(stack: Stack, client: Client) -> None:
    lineage = str(uuid.uuid4())
    first = state_body(1, lineage, phase="before")
    client.apply(first)
    objects = stack.s3.keys()
    rows = _table_counts(stack.database)

    stack.database_proxy.cut()
    client.statuses.clear()
    info = lock_info(uuid.uuid4().hex, "alice@e2e")
    assert_unavailable(client.write(state_body(2, lineage, phase="during")), "database")
    assert_unavailable(client.lock(info), "database")
    assert_unavailable(client.get(), "database")
    assert_unavailable(client.unlock(info), "database")
    assert_not_ready(client, "database", "postgresql")
    assert_only_success_or_503(client)

    stack.database_proxy.restore()
    assert client.readyz().status_code == 200
    after = client.get()
    assert (after.status_code, after.content) == (200, first)
    assert stack.s3.keys() == objects
    assert _table_counts(stack.database) == rows
    second = state_body(2, lineage, phase="after")
    client.apply(second)
    assert client.get().content == second


def _table_counts(database: str) -> dict[str, int]:
    """Rows per table that a write, lock or audit event would add to (read directly, not through the proxy)."""
    engine = sa.create_engine(postgres_url(database))
    try:
        with engine.connect() as conn:
            return {
                table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("workspaces", "state_versions", "audit_events")
            }
    finally:
        engine.dispose()
