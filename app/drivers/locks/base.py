"""The lock driver contract: one lock per key, acquired atomically, never cleared implicitly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.core.locks import HeldLock


class LockDriver(Protocol):
    """Per-workspace locks shared by every worker (and, for redis/postgres, every host)."""

    name: str

    def acquire(self, key: str, lock_id: str, info: str) -> HeldLock:
        """Take the lock, or succeed again for the same ``lock_id``; raises ``LockConflict`` with the holder."""
        ...

    def release(self, key: str, lock_id: str | None) -> HeldLock | None:
        """Release it (``lock_id=None`` forces); returns the released lock or None; raises ``LockConflict``."""
        ...

    def get(self, key: str) -> HeldLock | None:
        """The current holder, or None."""
        ...

    def get_many(self, keys: Sequence[str]) -> dict[str, HeldLock]:
        """The current holders of those of ``keys`` that are locked, in one round trip (a page of workspaces)."""
        ...

    def check(self) -> None:
        """Raise ``BackendUnavailable`` when the backend cannot be reached (readiness probe)."""
        ...
