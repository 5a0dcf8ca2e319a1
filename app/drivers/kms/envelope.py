"""The on-disk ciphertext format shared by every encrypting key manager.

Layout (version 1)::

    b"STMENC" | 0x01 | len(key_id):u8 | key_id | len(wrapped):u16 | wrapped | nonce:12 | segment_size:u32
    segment 0 ciphertext+tag | segment 1 ciphertext+tag | ...

The plaintext is cut into segments sealed separately with AES-GCM, so a 100 MB state streams through a few
megabytes of memory and every byte is authenticated before it is released. Segment ``i`` uses the random 96-bit
base nonce XOR ``i``; its associated data is ``sha256(header || context) || i || final`` so that segments cannot
be reordered, dropped, truncated or moved to another workspace/version, and the header (key id, wrapped data key)
cannot be swapped. ``wrapped`` is empty for a directly held key and holds the Transit-wrapped data key otherwise.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core.chunks import ChunkReader
from app.core.errors import DecryptionFailed

MAGIC = b"STMENC"
FORMAT_VERSION = 1
SEGMENT_SIZE = 1024 * 1024
TAG_SIZE = 16
NONCE_SIZE = 12


@dataclass(frozen=True)
class Header:
    """What precedes the segments; ``raw`` is the exact bytes, bound into every segment's associated data."""

    key_id: str
    wrapped_key: bytes
    nonce: bytes
    segment_size: int
    raw: bytes


def _encode_header(key_id: str, wrapped_key: bytes, nonce: bytes, segment_size: int) -> bytes:
    kid = key_id.encode()
    if len(kid) > 255 or len(wrapped_key) > 65535:
        raise ValueError("key id or wrapped key too long for the envelope header")
    return b"".join(
        (
            MAGIC,
            bytes([FORMAT_VERSION, len(kid)]),
            kid,
            struct.pack(">H", len(wrapped_key)),
            wrapped_key,
            nonce,
            struct.pack(">I", segment_size),
        )
    )


def _nonce(base: bytes, index: int) -> bytes:
    return (int.from_bytes(base, "big") ^ index).to_bytes(NONCE_SIZE, "big")


def _aad(digest: bytes, index: int, final: bool) -> bytes:
    return digest + struct.pack(">QB", index, 1 if final else 0)


def _resegment(chunks: Iterable[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """Re-cut a chunk stream into ``size`` pieces, flagging the last (always at least one piece)."""
    buffer = bytearray()
    pending: bytes | None = None
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            if pending is not None:
                yield pending, False
            pending = bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        if pending is not None:
            yield pending, False
        yield bytes(buffer), True
    else:
        yield (pending if pending is not None else b""), True


def seal(
    chunks: Iterable[bytes],
    context: bytes,
    key: bytes,
    key_id: str,
    wrapped_key: bytes = b"",
    segment_size: int = SEGMENT_SIZE,
) -> Iterator[bytes]:
    """Encrypt a plaintext stream into the envelope format."""
    nonce = os.urandom(NONCE_SIZE)
    header = _encode_header(key_id, wrapped_key, nonce, segment_size)
    digest = hashlib.sha256(header + context).digest()
    aead = AESGCM(key)
    yield header
    for index, (plain, final) in enumerate(_resegment(chunks, segment_size)):
        yield aead.encrypt(_nonce(nonce, index), plain, _aad(digest, index, final))


def read_header(reader: ChunkReader) -> Header:
    """Parse the header; raises ``DecryptionFailed`` when the bytes are not in this format."""
    fixed = reader.read(len(MAGIC) + 2)
    if len(fixed) < len(MAGIC) + 2 or not fixed.startswith(MAGIC):
        raise DecryptionFailed("stored object is not in the encrypted state format")
    if fixed[len(MAGIC)] != FORMAT_VERSION:
        raise DecryptionFailed(f"unsupported encryption format version {fixed[len(MAGIC)]}")
    kid = reader.read(fixed[-1])
    wrapped_len = reader.read(2)
    wrapped = reader.read(struct.unpack(">H", wrapped_len)[0]) if len(wrapped_len) == 2 else b""
    nonce = reader.read(NONCE_SIZE)
    seg = reader.read(4)
    if len(nonce) != NONCE_SIZE or len(seg) != 4:
        raise DecryptionFailed("encrypted state header is truncated")
    raw = fixed + kid + wrapped_len + wrapped + nonce + seg
    return Header(kid.decode(errors="replace"), wrapped, nonce, struct.unpack(">I", seg)[0], raw)


def unseal(chunks: Iterable[bytes], context: bytes, resolve_key: Callable[[Header], bytes]) -> Iterator[bytes]:
    """Decrypt an envelope stream; ``resolve_key`` maps the header to the AES key. Each segment is verified first."""
    reader = ChunkReader(chunks)
    header = read_header(reader)
    aead = AESGCM(resolve_key(header))
    digest = hashlib.sha256(header.raw + context).digest()
    sealed_size = header.segment_size + TAG_SIZE
    current = reader.read(sealed_size)
    index = 0
    while True:
        following = reader.read(sealed_size) if len(current) == sealed_size else b""
        final = not following
        try:
            yield aead.decrypt(_nonce(header.nonce, index), current, _aad(digest, index, final))
        except InvalidTag:
            raise DecryptionFailed(
                "stored state does not decrypt: wrong key, or the object was altered, truncated or moved"
            ) from None
        if final:
            return
        current, index = following, index + 1
