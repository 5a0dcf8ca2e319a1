"""AES-256-GCM with keys held by the server (``KMS_KEY`` / ``KMS_KEY_FILE``; ``KMS_OLD_KEYS`` stay readable)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from app.core.errors import KeyNotConfigured
from app.drivers.kms import envelope
from config import Config, ConfigError


def local_key_id(key: bytes) -> str:
    """A stable, non-secret name for a key: a short fingerprint, never the key itself."""
    return "local:" + hashlib.sha256(b"statesman-key-id:" + key).hexdigest()[:16]


class LocalKeyManager:
    """Encrypts with the current key; decrypts with whichever configured key the header names."""

    name = "local"

    def __init__(self, key: bytes, old_keys: Iterable[bytes] = ()) -> None:
        self._key = key
        self.key_id = local_key_id(key)
        self._keys = {local_key_id(k): k for k in (*old_keys, key)}

    @classmethod
    def from_config(cls, config: Config) -> LocalKeyManager:
        if config.kms_key is None:
            raise ConfigError("KMS_BACKEND=local needs KMS_KEY or KMS_KEY_FILE")
        return cls(config.kms_key, config.kms_old_keys)

    def encrypt(self, chunks: Iterable[bytes], context: bytes) -> Iterator[bytes]:
        return envelope.seal(chunks, context, self._key, self.key_id)

    def decrypt(self, chunks: Iterable[bytes], context: bytes) -> Iterator[bytes]:
        return envelope.unseal(chunks, context, self._resolve)

    def _resolve(self, header: envelope.Header) -> bytes:
        try:
            return self._keys[header.key_id]
        except KeyError:
            raise KeyNotConfigured(header.key_id, "configure it (KMS_KEY, or KMS_OLD_KEYS for an old key)") from None

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys

    def check(self) -> None:
        return None
