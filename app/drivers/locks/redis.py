"""Locks in Redis: one key per workspace taken with ``SET NX``, released by a compare-and-delete Lua script.

The value is a small JSON document (lock_id, info, created_at, expires_at). A key expires only when
``LOCK_TTL`` is configured; otherwise nothing but a release clears it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from app.core.clock import utcnow
from app.core.errors import BackendUnavailable, LockConflict
from app.core.locks import HeldLock
from config import Config, ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger("statesman.locks")

BACKEND = "redis lock"
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 5.0
_RACE_RETRIES = 5

# Atomic compare-and-delete. ARGV[1] is "force" (delete any holder) or "match" (delete only if the stored
# lock_id equals ARGV[2]). Returns nil when unlocked, else {deleted (1/0), stored value}.
_RELEASE_SCRIPT = """
local stored = redis.call('GET', KEYS[1])
if not stored then
  return false
end
if ARGV[1] ~= 'force' and cjson.decode(stored)['lock_id'] ~= ARGV[2] then
  return {0, stored}
end
redis.call('DEL', KEYS[1])
return {1, stored}
"""


class RedisLockDriver:
    """A key per locked workspace under ``prefix``; Redis executes each acquire and release atomically."""

    name = "redis"
    shares_metadata_database = False

    def __init__(self, client: redis.Redis, prefix: str, ttl: timedelta | None = None, password: str = "") -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self._password = password
        self._release = client.register_script(_RELEASE_SCRIPT)

    @classmethod
    def from_config(cls, config: Config) -> RedisLockDriver:
        """A driver on ``REDIS_URL`` (``redis://`` or TLS ``rediss://``) with keys under ``redis_key_prefix``."""
        ttl = timedelta(seconds=config.lock_ttl_seconds) if config.lock_ttl_seconds else None
        try:
            client = redis.Redis.from_url(
                config.redis_url,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                socket_timeout=READ_TIMEOUT_SECONDS,
                # One immediate retry when a connection drops mid-command (Redis restart, failover, idle timeout).
                # Both are safe to repeat: a repeated SET NX finds our own lock_id, a repeated release finds nothing.
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            )
        except ValueError as exc:
            raise ConfigError(f"REDIS_URL: {exc}") from exc
        password = client.connection_pool.connection_kwargs.get("password") or ""
        return cls(client, config.redis_key_prefix, ttl, password)

    def acquire(self, key: str, lock_id: str, info: str, within: Connection | None = None) -> HeldLock:
        """Take the lock with one ``SET NX``, or succeed again for the same ``lock_id``; else ``LockConflict``."""
        now = utcnow()
        held = HeldLock(lock_id, info, now, now + self.ttl if self.ttl else None)
        ttl_ms = int(self.ttl.total_seconds() * 1000) if self.ttl else None
        with self._translated():
            for _ in range(_RACE_RETRIES):
                if self.client.set(self._key(key), _encode(held), nx=True, px=ttl_ms):
                    return held
                holder = self._read(key)
                if holder is None:
                    continue  # released (or expired) between our SET and our GET: try again
                if holder.lock_id == lock_id:
                    return holder
                raise LockConflict("workspace is locked", holder)
        raise BackendUnavailable(BACKEND, "lock key kept changing; try again")

    def release(self, key: str, lock_id: str | None, within: Connection | None = None) -> HeldLock | None:
        """Delete the lock if ``lock_id`` holds it (any holder when None); returns what was deleted."""
        mode = "force" if lock_id is None else "match"
        with self._translated():
            result = self._release(keys=[self._key(key)], args=[mode, lock_id or ""])
        if result is None:
            return None
        deleted, stored = result
        holder = _decode(stored)
        if not deleted:
            raise LockConflict("workspace is locked by another lock ID", holder)
        return holder

    def get(self, key: str, within: Connection | None = None) -> HeldLock | None:
        """The current holder, or None."""
        with self._translated():
            return self._read(key)

    def get_many(self, keys: Sequence[str], within: Connection | None = None) -> dict[str, HeldLock]:
        """The current holders among ``keys`` (one MGET)."""
        if not keys:
            return {}
        with self._translated():
            stored = self.client.mget([self._key(key) for key in keys])
        return {key: _decode(value) for key, value in zip(keys, stored, strict=True) if value is not None}

    def check(self) -> None:
        """Raise ``BackendUnavailable`` unless Redis answers PING.

        The message (a response of ``/readyz``) names only the error class; ``details["startup"]``, which the start-up
        check prints, names the address from the configuration and what to do.
        """
        settings = self.client.connection_pool.connection_kwargs
        where = settings.get("path") or f"{settings.get('host', 'localhost')}:{settings.get('port', 6379)}"
        try:
            with self._translated():
                self.client.ping()
        except BackendUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, AuthenticationError):
                exc.details["startup"] = f"Redis at {where} refused the credentials: check REDIS_URL or REDIS_PASSWORD"
            else:
                exc.details["startup"] = (
                    f"cannot connect to Redis at {where} ({type(cause).__name__}): start it, or set REDIS_URL or "
                    "REDIS_ADDR"
                )
            raise

    def close(self) -> None:
        """Close every pooled connection."""
        self.client.close()

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def _read(self, key: str) -> HeldLock | None:
        stored = self.client.get(self._key(key))
        return _decode(stored) if stored is not None else None

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except RedisError as exc:
            # Only the error's class reaches the client: Redis' own text (a Lua error, an address) is for the log.
            log.warning("redis lock driver: %s", self._describe(exc))
            raise BackendUnavailable(BACKEND, type(exc).__name__) from exc

    def _describe(self, exc: RedisError) -> str:
        text = f"{type(exc).__name__}: {exc}"[:200]
        return text.replace(self._password, "***") if self._password else text


def _encode(held: HeldLock) -> str:
    doc: dict[str, Any] = {"lock_id": held.lock_id, "info": held.info, "created_at": held.created_at.isoformat()}
    if held.expires_at is not None:
        doc["expires_at"] = held.expires_at.isoformat()
    return json.dumps(doc)


def _decode(stored: bytes | str) -> HeldLock:
    try:
        doc = json.loads(stored)
        expires = doc.get("expires_at")
        return HeldLock(
            doc["lock_id"],
            doc["info"],
            datetime.fromisoformat(doc["created_at"]),
            datetime.fromisoformat(expires) if expires else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackendUnavailable(BACKEND, "stored lock value is not a Statesman lock record") from exc
