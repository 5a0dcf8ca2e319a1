"""A file-like view of a chunk stream, for readers that want byte counts rather than chunks."""

from __future__ import annotations

from collections.abc import Iterable


class ChunkReader:
    """``read(size)`` over a chunk iterator, pulling only as many chunks as ``size`` needs.

    ijson parses a stored state through it without holding it whole; the envelope format reads exact header
    and segment lengths through it.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that remain when ``size`` is negative); fewer only at the end."""
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out
