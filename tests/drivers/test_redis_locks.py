"""Behaviour of the redis lock driver beyond the contract: key layout, TTL, authentication, TLS, failures, races."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.core.errors import BackendUnavailable, LockConflict
from app.drivers.locks import build_lock_driver
from app.drivers.locks.redis import RedisLockDriver
from config import Config, ConfigError
from tests.drivers.lock_services import redis_config
from tests.services import REDIS_URL, require_service, services_required

INFO = '{"ID":"a","Operation":"OperationTypeApply","Who":"alice@host"}'
PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    require_service("redis")
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def _driver(config: Config) -> RedisLockDriver:
    driver = build_lock_driver(config)
    assert isinstance(driver, RedisLockDriver)
    return driver


@pytest.fixture
def config(request: pytest.FixtureRequest) -> Config:
    return redis_config(request)


@pytest.fixture
def locks(config: Config) -> Iterator[RedisLockDriver]:
    driver = _driver(config)
    yield driver
    driver.close()


def test_keys_are_namespaced_under_the_prefix(locks: RedisLockDriver, config: Config, raw: redis.Redis) -> None:
    held = locks.acquire("org/ws-1", "a", INFO)
    assert list(raw.scan_iter(match=f"{config.redis_key_prefix}*")) == [f"{config.redis_key_prefix}org/ws-1".encode()]
    assert raw.exists("org/ws-1") == 0
    stored = json.loads(raw.get(f"{config.redis_key_prefix}org/ws-1"))
    assert stored == {"lock_id": "a", "info": INFO, "created_at": held.created_at.isoformat()}


def test_no_ttl_unless_configured(locks: RedisLockDriver, config: Config, raw: redis.Redis) -> None:
    held = locks.acquire("ws-1", "a", INFO)
    assert raw.ttl(f"{config.redis_key_prefix}ws-1") == -1
    assert held.expires_at is None
    assert locks.get("ws-1").expires_at is None


def test_ttl_is_set_and_visible_when_configured(request: pytest.FixtureRequest, raw: redis.Redis) -> None:
    config = redis_config(request, lock_ttl_seconds=600)
    locks = _driver(config)
    try:
        held = locks.acquire("ws-1", "a", INFO)
        assert 590_000 < raw.pttl(f"{config.redis_key_prefix}ws-1") <= 600_000
        assert held.expires_at == held.created_at + dt.timedelta(seconds=600)
        assert locks.get("ws-1") == held
    finally:
        locks.close()


def test_an_expired_lock_is_gone(config: Config) -> None:
    client = redis.Redis.from_url(config.redis_url)
    locks = RedisLockDriver(client, config.redis_key_prefix, ttl=dt.timedelta(milliseconds=100))
    try:
        locks.acquire("ws-1", "a", INFO)
        time.sleep(0.2)
        assert locks.get("ws-1") is None
        assert locks.acquire("ws-1", "b", INFO).lock_id == "b"
    finally:
        locks.close()


def test_info_is_returned_byte_for_byte(locks: RedisLockDriver) -> None:
    info = '{"ID":"é\\u2028","Info":"line\\nbreak",  "Who":"ünïcode ✓"}'
    locks.acquire("ws-1", "a", info)
    with pytest.raises(LockConflict) as caught:
        locks.acquire("ws-1", "b", INFO)
    assert caught.value.holder.info == info


def test_a_foreign_value_under_the_key_is_backend_unavailable(
    locks: RedisLockDriver, config: Config, raw: redis.Redis
) -> None:
    raw.set(f"{config.redis_key_prefix}ws-1", b"not json")
    with pytest.raises(BackendUnavailable):
        locks.get("ws-1")
    with pytest.raises(BackendUnavailable):
        locks.release("ws-1", "a")
    assert raw.get(f"{config.redis_key_prefix}ws-1") == b"not json"


def test_release_never_deletes_another_holders_lock_under_a_race(locks: RedisLockDriver) -> None:
    """Holders release their own locks while a forcer clears whatever is there: each lock goes exactly once."""
    acquired: list[str] = []
    released: list[str] = []
    problems: list[str] = []
    done = threading.Event()
    barrier = threading.Barrier(4)

    def hold(me: str) -> None:
        barrier.wait()
        for n in range(150):
            lock_id = f"{me}-{n}"
            try:
                locks.acquire("ws-race", lock_id, lock_id)
            except BackendUnavailable as exc:
                # Hammering the key in a tight loop can make it change between SET NX and GET every retry.
                assert "kept changing" in exc.message
                continue
            except LockConflict:
                try:
                    if locks.release("ws-race", lock_id) is not None:
                        problems.append(f"{lock_id} released a lock it never held")
                except LockConflict:
                    pass
                continue
            acquired.append(lock_id)
            try:
                mine = locks.release("ws-race", lock_id)
            except LockConflict:
                continue  # forced away, and someone else holds it now
            if mine is not None:
                released.append(mine.lock_id)
                if mine.lock_id != lock_id:
                    problems.append(f"{lock_id}'s release returned {mine.lock_id}")

    def force() -> None:
        barrier.wait()
        while not done.is_set():
            gone = locks.release("ws-race", None)
            if gone is not None:
                released.append(gone.lock_id)

    holders = [threading.Thread(target=hold, args=(f"id{n}",)) for n in range(3)]
    forcer = threading.Thread(target=force)
    for t in [*holders, forcer]:
        t.start()
    for t in holders:
        t.join()
    done.set()
    forcer.join()
    leftover = locks.release("ws-race", None)
    released += [leftover.lock_id] if leftover else []
    assert problems == []
    assert sorted(released) == sorted(acquired)
    assert len(acquired) > 10


def test_a_connection_closed_by_the_server_is_reopened(locks: RedisLockDriver, raw: redis.Redis) -> None:
    locks.acquire("ws-1", "a", INFO)
    raw.client_kill_filter(_id=locks.client.client_id())
    assert locks.get("ws-1").lock_id == "a"
    assert locks.release("ws-1", "a").lock_id == "a"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "operation",
    [
        lambda locks: locks.acquire("ws-1", "a", INFO),
        lambda locks: locks.release("ws-1", "a"),
        lambda locks: locks.release("ws-1", None),
        lambda locks: locks.get("ws-1"),
        lambda locks: locks.check(),
    ],
    ids=["acquire", "release", "force-release", "get", "check"],
)
def test_unreachable_redis_is_backend_unavailable_quickly(operation: object) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{_closed_port()}/0"
    locks = _driver(replace(Config(), lock_backend="redis", redis_url=url))
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable) as caught:
            operation(locks)  # type: ignore[operator]
    finally:
        locks.close()
    assert time.monotonic() - started < 2
    assert caught.value.backend == "redis lock"
    assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    assert PASSWORD not in str(caught.value)


def test_an_invalid_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL") as caught:
        _driver(replace(Config(), lock_backend="redis", redis_url=f"http://:{PASSWORD}@127.0.0.1:6379/0"))
    assert PASSWORD not in str(caught.value)


@pytest.fixture
def acl_user(raw: redis.Redis, config: Config) -> Iterator[str]:
    """A Redis ACL user allowed only the driver's commands on the test's key prefix."""
    name = f"statesman-test-{uuid.uuid4().hex[:12]}"
    rules = ["on", f">{PASSWORD}", "resetkeys", f"~{config.redis_key_prefix}*", "resetchannels", "-@all"]
    rules += ["+ping", "+get", "+set", "+del", "+eval", "+evalsha", "+script|load"]
    try:
        raw.execute_command("ACL", "SETUSER", name, *rules)
    except redis.exceptions.ResponseError as exc:
        pytest.skip(f"this Redis has no ACL support (Redis < 6): {exc}")
    yield name
    raw.execute_command("ACL", "DELUSER", name)


def test_username_and_password_url(config: Config, acl_user: str) -> None:
    locks = _driver(replace(config, redis_url=f"redis://{acl_user}:{PASSWORD}@127.0.0.1:6379/0"))
    try:
        locks.check()
        locks.acquire("ws-1", "a", INFO)
        with pytest.raises(LockConflict):
            locks.release("ws-1", "b")
        assert locks.release("ws-1", "a").lock_id == "a"
    finally:
        locks.close()


def test_a_wrong_password_is_backend_unavailable_without_the_password(config: Config, acl_user: str) -> None:
    locks = _driver(replace(config, redis_url=f"redis://{acl_user}:wrong-{PASSWORD}@127.0.0.1:6379/0"))
    try:
        with pytest.raises(BackendUnavailable) as caught:
            locks.acquire("ws-1", "a", INFO)
    finally:
        locks.close()
    assert PASSWORD not in str(caught.value)


@dataclass(frozen=True)
class PrivateRedis:
    """A redis-server of this test module: requirepass on the plain port, TLS on the other."""

    port: int
    tls_port: int
    ca_file: Path


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "redis.crt", directory / "redis.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def _wait_until_up(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and server.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"private redis-server did not start (exit code {server.poll()})")


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        if services_required():
            pytest.fail("redis-server is not installed and STATESMAN_REQUIRE_SERVICES=1")
        pytest.skip("redis-server is not installed (needed for the password-only and TLS cases)")
    directory = tmp_path_factory.mktemp("private-redis")
    cert_file, key_file = _self_signed_certificate(directory)
    port, tls_port = _closed_port(), _closed_port()
    options = {
        "port": port,
        "tls-port": tls_port,
        "bind": "127.0.0.1",
        "requirepass": PASSWORD,
        "save": "",
        "appendonly": "no",
        "dir": directory,
        "tls-cert-file": cert_file,
        "tls-key-file": key_file,
        "tls-ca-cert-file": cert_file,
        "tls-auth-clients": "no",
    }
    args = [binary, *(arg for name, value in options.items() for arg in (f"--{name}", str(value)))]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(tls_port, server)
        yield PrivateRedis(port, tls_port, cert_file)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _round_trip(url: str) -> None:
    locks = _driver(replace(Config(), lock_backend="redis", redis_url=url, redis_key_prefix="statesman-test:"))
    try:
        locks.check()
        assert locks.acquire("ws-1", "a", INFO).info == INFO
        assert locks.get("ws-1").lock_id == "a"
        assert locks.release("ws-1", "a").lock_id == "a"
    finally:
        locks.close()


def test_password_only_url(private_redis: PrivateRedis) -> None:
    _round_trip(f"redis://:{PASSWORD}@127.0.0.1:{private_redis.port}/3")


def test_tls_url(private_redis: PrivateRedis) -> None:
    _round_trip(f"rediss://:{PASSWORD}@127.0.0.1:{private_redis.tls_port}/0?ssl_ca_certs={private_redis.ca_file}")


def test_tls_verifies_the_server_certificate(private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture) -> None:
    url = f"rediss://:{PASSWORD}@127.0.0.1:{private_redis.tls_port}/0"
    locks = _driver(replace(Config(), lock_backend="redis", redis_url=url))
    try:
        with pytest.raises(BackendUnavailable, match=r"redis lock backend unavailable: ConnectionError$") as caught:
            locks.check()
    finally:
        locks.close()
    # Redis' own words (addresses, certificate problems, Lua errors) go to the log, never into a response.
    assert "certificate verify failed" in caplog.text
    assert PASSWORD not in str(caught.value) and PASSWORD not in caplog.text
