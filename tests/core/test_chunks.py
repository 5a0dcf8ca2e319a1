"""``ChunkReader``: any sequence of reads over any cutting of a byte string gives back exactly its bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.core.chunks import ChunkReader


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut at the given sizes (empty chunks included), the rest as a last chunk."""
    chunks, position = [], 0
    for size in sizes:
        chunks.append(data[position : position + size])
        position += size
    return [*chunks, data[position:]]


@given(
    data=st.binary(max_size=2000),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=20),
    reads=st.lists(st.integers(min_value=-1, max_value=700), max_size=30),
)
def test_reads_return_the_stream_in_order_and_nothing_else(data: bytes, cuts: list[int], reads: list[int]) -> None:
    reader = ChunkReader(cut(data, cuts))
    position = 0
    for size in reads:
        piece = reader.read(size)
        expected = data[position:] if size < 0 else data[position : position + size]
        assert piece == expected
        position += len(piece)
    assert reader.read() == data[position:]
    assert reader.read(10) == b""


def test_a_whole_chunk_is_returned_without_a_copy() -> None:
    chunk = b"x" * 1024
    reader = ChunkReader([b"head", chunk])
    assert reader.read(4) == b"head"
    assert reader.read(1024) is chunk


def test_a_chunk_that_changes_afterwards_does_not_change_what_was_read() -> None:
    buffer = bytearray(b"abcdef")
    reader = ChunkReader([buffer])
    first = reader.read(3)
    buffer[:] = b"zzzzzz"
    assert first == b"abc" and reader.read() == b"def"
