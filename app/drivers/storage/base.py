"""The storage driver contract: immutable objects addressed by key, written atomically, read as a stream."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.core.errors import NotFound

CHUNK_SIZE = 1024 * 1024


class ObjectNotFound(NotFound):
    """No object is stored under that key."""


@dataclass(frozen=True)
class StoredObject:
    """A stored object (or the leftover of an unfinished write) as a listing shows it; times are naive UTC."""

    key: str
    size: int
    modified_at: datetime


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

    def list_keys(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every complete object whose key starts with ``prefix``, in no particular order."""
        ...

    def list_incomplete(self) -> Iterator[StoredObject]:
        """Leftovers of writes that never finished (a killed process): temporary files, multipart uploads.

        Their ``key`` is the driver's own handle for ``discard_incomplete``, not an object key.
        """
        ...

    def discard_incomplete(self, key: str) -> None:
        """Remove one leftover that ``list_incomplete`` reported; a missing one is not an error."""
        ...

    def check(self) -> None:
        """Raise ``BackendUnavailable`` when the backend cannot be reached (readiness probe)."""
        ...
