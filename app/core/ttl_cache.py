"""A small per-process cache whose entries expire after a fixed time."""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Entries live ``ttl_seconds``; past ``max_entries`` the cache starts over (bounded memory, no LRU cost)."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, V]] = {}
        self._guard = threading.Lock()

    def get(self, key: str) -> V | None:
        """The live value for ``key``, or None."""
        with self._guard:
            entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, value: V, max_seconds: float | None = None) -> None:
        """Remember ``value`` for ``ttl_seconds`` (or less, when the value itself expires sooner)."""
        lifetime = self.ttl_seconds if max_seconds is None else min(self.ttl_seconds, max_seconds)
        with self._guard:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + lifetime, value)

    def clear(self) -> None:
        """Forget everything."""
        with self._guard:
            self._entries.clear()
