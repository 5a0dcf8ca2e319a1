"""The lock driver contract: one lock per key, acquired atomically, never cleared implicitly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.engine import Connection

from app.core.locks import HeldLock


class LockDriver(Protocol):
    """Per-workspace locks shared by every worker (and, for redis/postgres, every host)."""

    name: str
    # True when the lock table is in the metadata database, where the caller's transaction can reach it: every method
    # but ``check`` then takes ``within``, the caller's open connection, so that the lock row and the audit event of the
    # change commit together (one write instead of two, and never one without the other). Drivers whose locks live
    # elsewhere say False and are never given a connection.
    shares_metadata_database: bool

    def acquire(self, key: str, lock_id: str, info: str, within: Connection | None = None) -> HeldLock:
        """Take the lock, or succeed again for the same ``lock_id``; raises ``LockConflict`` with the holder.

        With ``within``, the lock is taken in that connection's transaction and held once the caller commits it.
        """
        ...

    def release(self, key: str, lock_id: str | None, within: Connection | None = None) -> HeldLock | None:
        """Release it (``lock_id=None`` forces); returns the released lock or None; raises ``LockConflict``.

        With ``within``, as for ``acquire``: released once the caller commits.
        """
        ...

    def get(self, key: str, within: Connection | None = None) -> HeldLock | None:
        """The current holder, or None (read on ``within`` when given: no second connection for the request)."""
        ...

    def get_many(self, keys: Sequence[str], within: Connection | None = None) -> dict[str, HeldLock]:
        """The current holders of those of ``keys`` that are locked, in one round trip (a page of workspaces)."""
        ...

    def check(self) -> None:
        """Raise ``BackendUnavailable`` when the backend cannot be reached (readiness probe)."""
        ...
