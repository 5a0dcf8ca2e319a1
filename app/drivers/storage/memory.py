"""Objects in a dict of this process: development and tests only (data is lost on restart)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime

from app.core.clock import utcnow
from app.drivers.storage.base import CHUNK_SIZE, ObjectNotFound, StoredObject
from config import Config

log = logging.getLogger("statesman.storage")


class MemoryStorage:
    """Objects appear whole: the bytes are joined before they are published under the key."""

    name = "memory"

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._written_at: dict[str, datetime] = {}
        self._guard = threading.Lock()

    @classmethod
    def from_config(cls, config: Config) -> MemoryStorage:
        if not config.testing:
            log.warning("storage driver 'memory': every state is lost when the server stops")
        return cls()

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        data = b"".join(chunks)
        with self._guard:
            self._objects[key] = data
            self._written_at[key] = utcnow()
        return len(data)

    def open(self, key: str) -> Iterator[bytes]:
        with self._guard:
            data = self._objects.get(key)
        if data is None:
            raise ObjectNotFound(f"no stored object {key}")
        return (data[i : i + CHUNK_SIZE] for i in range(0, max(len(data), 1), CHUNK_SIZE))

    def delete(self, key: str) -> None:
        with self._guard:
            self._objects.pop(key, None)
            self._written_at.pop(key, None)

    def list_keys(self, prefix: str = "") -> Iterator[StoredObject]:
        with self._guard:
            found = [
                StoredObject(key, len(data), self._written_at[key])
                for key, data in self._objects.items()
                if key.startswith(prefix)
            ]
        return iter(found)

    def list_incomplete(self) -> Iterator[StoredObject]:
        return iter(())  # a write is joined in memory before it is published: nothing is ever left half-done

    def discard_incomplete(self, key: str) -> None:
        return None

    def check(self) -> None:
        return None
