"""A file-like view of a chunk stream, for readers that want byte counts rather than chunks."""

from __future__ import annotations

from collections.abc import Iterable


class ChunkReader:
    """``read(size)`` over a chunk iterator, pulling only as many chunks as ``size`` needs.

    ijson parses a stored state through it without holding it whole; the envelope format reads exact header
    and segment lengths through it. A read is served from the current chunk by position, never by deleting
    from the front of a buffer: the envelope's small header reads out of a 1 MiB chunk would otherwise move the
    whole chunk each time, and a read that spans chunks copies its bytes once.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = b""
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that remain when ``size`` is negative); fewer only at the end."""
        start, available = self._position, len(self._chunk) - self._position
        if 0 <= size <= available:
            self._position += size
            if start == 0 and size == len(self._chunk):
                return self._chunk  # the whole chunk: no copy
            return self._chunk[start : start + size]
        # Pieces are views into the chunks, so a read across chunks copies its bytes once, in the join.
        parts: list[bytes | memoryview] = [memoryview(self._chunk)[start:]] if available else []
        wanted = size - available
        self._chunk, self._position = b"", 0
        while size < 0 or wanted > 0:
            found = next(self._chunks, None)
            if found is None:
                break
            chunk = bytes(found)  # no copy for bytes; a bytearray or memoryview must not change under us
            if 0 <= wanted < len(chunk):
                parts.append(memoryview(chunk)[:wanted])
                self._chunk, self._position = chunk, wanted
                break
            parts.append(chunk)
            wanted -= len(chunk)
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0]
        return b"".join(parts)
