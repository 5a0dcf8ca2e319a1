"""``KMS_BACKEND=none``: an explicit opt-out that stores states unencrypted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from app.core.errors import DecryptionFailed
from app.drivers.kms import envelope
from config import Config

NONE_KEY_ID = "none"


class PlaintextKeyManager:
    """Passes bytes through; refuses to hand out ciphertext of versions written while encryption was on."""

    name = "none"
    key_id = NONE_KEY_ID

    @classmethod
    def from_config(cls, config: Config) -> PlaintextKeyManager:
        return cls()

    def encrypt(self, chunks: Iterable[bytes], context: bytes) -> Iterator[bytes]:
        yield from chunks

    def decrypt(self, chunks: Iterable[bytes], context: bytes) -> Iterator[bytes]:
        iterator = iter(chunks)
        first = next(iterator, b"")
        if first.startswith(envelope.MAGIC):
            raise DecryptionFailed("this version is encrypted but KMS_BACKEND=none; configure its key to read it")
        yield first
        yield from iterator

    def knows(self, key_id: str) -> bool:
        return key_id == NONE_KEY_ID

    def check(self) -> None:
        return None
