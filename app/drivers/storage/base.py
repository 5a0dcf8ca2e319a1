"""The storage driver contract: immutable objects addressed by key, written atomically, read as a stream."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from app.core.errors import NotFound

CHUNK_SIZE = 1024 * 1024


class ObjectNotFound(NotFound):
    """No object is stored under that key."""


class StorageDriver(Protocol):
    """Stores encrypted state objects. Keys include the version id, so an object is written once and never changed."""

    name: str

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the object atomically (whole or not at all) and return its size; raises ``BackendUnavailable``."""
        ...

    def open(self, key: str) -> Iterator[bytes]:
        """Stream the object; raises ``ObjectNotFound`` before yielding when it is missing."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def check(self) -> None:
        """Raise ``BackendUnavailable`` when the backend cannot be reached (readiness probe)."""
        ...
