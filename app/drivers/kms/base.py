"""The encryption-at-rest contract: stream in, stream out, bound to a context (workspace and version)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol


def seal(kms: KeyManager, data: bytes, context: bytes) -> bytes:
    """A small value (a key, a variable) encrypted in one piece, bound to ``context``."""
    return b"".join(kms.encrypt([data], context))


def unseal(kms: KeyManager, sealed: bytes, context: bytes) -> bytes:
    """What ``seal`` sealed; raises like ``decrypt`` when the key or the context is wrong."""
    return b"".join(kms.decrypt([sealed], context))


class KeyManager(Protocol):
    """Encrypts state objects; ``key_id`` names the key new versions are written with (kept in metadata)."""

    name: str
    key_id: str

    def encrypt(self, chunks: Iterable[bytes], context: bytes) -> Iterator[bytes]:
        """Ciphertext of the plaintext chunks, bound to ``context`` (associated data)."""
        ...

    def decrypt(self, chunks: Iterable[bytes], context: bytes) -> Iterator[bytes]:
        """Plaintext, each chunk verified before it is yielded; raises ``DecryptionFailed``."""
        ...

    def knows(self, key_id: str) -> bool:
        """True when versions written under ``key_id`` are readable by this manager (as far as it can tell)."""
        ...

    def check(self) -> None:
        """Raise ``BackendUnavailable`` when the key source cannot be reached (readiness probe)."""
        ...
