"""A workspace lock as every layer sees it: the lock drivers store it, the APIs render it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class HeldLock:
    """A lock as stored: ``info`` is the client's LockInfo text exactly as it was sent."""

    lock_id: str
    info: str
    created_at: datetime
    expires_at: datetime | None = None
