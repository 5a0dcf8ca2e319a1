"""Locks in a dict of this process: development and tests only; refused when gunicorn runs several workers."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from app.core.clock import utcnow
from app.core.errors import LockConflict
from app.core.locks import HeldLock
from config import Config

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class MemoryLockDriver:
    """One mutex guards the dict, held only for the few instructions of a lookup and update."""

    name = "memory"
    shares_metadata_database = False

    def __init__(self, ttl: timedelta | None = None) -> None:
        self._locks: dict[str, HeldLock] = {}
        self._guard = threading.Lock()
        self.ttl = ttl

    @classmethod
    def from_config(cls, config: Config) -> MemoryLockDriver:
        return cls(timedelta(seconds=config.lock_ttl_seconds) if config.lock_ttl_seconds else None)

    def _live(self, key: str) -> HeldLock | None:
        holder = self._locks.get(key)
        if holder and holder.expires_at is not None and holder.expires_at <= utcnow():
            del self._locks[key]
            return None
        return holder

    def acquire(self, key: str, lock_id: str, info: str, within: Connection | None = None) -> HeldLock:
        with self._guard:
            holder = self._live(key)
            if holder is not None:
                if holder.lock_id == lock_id:
                    return holder
                raise LockConflict("workspace is locked", holder)
            now = utcnow()
            held = HeldLock(lock_id, info, now, now + self.ttl if self.ttl else None)
            self._locks[key] = held
            return held

    def release(self, key: str, lock_id: str | None, within: Connection | None = None) -> HeldLock | None:
        with self._guard:
            holder = self._live(key)
            if holder is None:
                return None
            if lock_id is not None and holder.lock_id != lock_id:
                raise LockConflict("workspace is locked by another lock ID", holder)
            return self._locks.pop(key)

    def get(self, key: str, within: Connection | None = None) -> HeldLock | None:
        with self._guard:
            return self._live(key)

    def get_many(self, keys: Sequence[str], within: Connection | None = None) -> dict[str, HeldLock]:
        with self._guard:
            held = {key: self._live(key) for key in keys}
        return {key: holder for key, holder in held.items() if holder is not None}

    def check(self) -> None:
        return None
