"""``KMS_BACKEND=transit``: envelope encryption with a Vault Transit key (``KMS_TRANSIT_ENGINE``/``KMS_TRANSIT_KEY``).

Every encryption asks Transit for a fresh data key (``datakey/plaintext``), seals the state locally and stores the
Transit-wrapped data key (``vault:vN:...``) in the envelope header, so state bytes never travel to Vault. Reading a
state asks Transit to unwrap that data key; unwrapped keys are kept in a small LRU so re-reads do not call Vault.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from app.core.errors import DecryptionFailed, KeyNotConfigured
from app.drivers.kms import envelope
from app.drivers.kms.vault_client import (
    VaultClient,
    VaultRequestFailed,
    VaultRequestRejected,
    section,
    startup_errors,
)
from config import Config, ConfigError

KEY_ID_PREFIX = "transit:"
DATA_KEY_BITS = 256
CACHE_SIZE = 256


class TransitKeyManager:
    """Seals each state with its own Transit data key; the key id names the Transit key that wrapped it."""

    name = "transit"

    def __init__(self, client: VaultClient, engine: str, key: str, cache_size: int = CACHE_SIZE) -> None:
        self._client = client
        self._engine = engine.strip("/")
        self._key = key
        self.key_id = KEY_ID_PREFIX + key
        self._cache: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        with startup_errors():
            self._check_key()

    @classmethod
    def from_config(cls, config: Config) -> TransitKeyManager:
        if not config.kms_transit_key:
            raise ConfigError("KMS_BACKEND=transit needs KMS_TRANSIT_KEY")
        client = VaultClient.from_config(config)
        try:
            return cls(client, config.kms_transit_engine, config.kms_transit_key)
        except BaseException:
            client.close()
            raise

    def encrypt(self, chunks: Iterable[bytes], context: bytes) -> Iterator[bytes]:
        data_key, wrapped = self._new_data_key()
        return envelope.seal(chunks, context, data_key, self.key_id, wrapped_key=wrapped)

    def decrypt(self, chunks: Iterable[bytes], context: bytes) -> Iterator[bytes]:
        return envelope.unseal(chunks, context, self._resolve)

    def check(self) -> None:
        """Read the Transit key's metadata (``GET <engine>/keys/<key>``)."""
        self._read_key()

    def close(self) -> None:
        """Stop the Vault client's token renewal and close its session."""
        self._client.close()

    def _describe(self, key: str) -> str:
        return f"Transit key {key!r} in engine {self._engine!r} (KMS_TRANSIT_KEY / KMS_TRANSIT_ENGINE)"

    def _read_key(self) -> dict[str, object]:
        action = f"read the {self._describe(self._key)}"
        return section(
            self._client.call(action, lambda c: c.secrets.transit.read_key(self._key, mount_point=self._engine)),
            "data",
            action,
        )

    def _check_key(self) -> None:
        metadata = self._read_key()
        if metadata.get("supports_encryption") is False:
            raise ConfigError(
                f"the {self._describe(self._key)} is of type {metadata.get('type')}, "
                "which cannot encrypt; use aes256-gcm96"
            )

    def _new_data_key(self) -> tuple[bytes, bytes]:
        """A fresh AES-256 data key and its Transit-wrapped form (``vault:vN:...``)."""
        action = f"generate a data key with the {self._describe(self._key)}"
        data = section(
            self._client.call(
                action,
                lambda c: c.secrets.transit.generate_data_key(
                    self._key, key_type="plaintext", bits=DATA_KEY_BITS, mount_point=self._engine
                ),
            ),
            "data",
            action,
        )
        wrapped = str(data.get("ciphertext") or "").encode()
        data_key = _b64(data.get("plaintext"))
        if not wrapped or len(data_key) != DATA_KEY_BITS // 8:
            raise VaultRequestFailed(f"could not {action}: Vault's answer has no usable data key")
        self._remember((self._key, wrapped), data_key)
        return data_key, wrapped

    def knows(self, key_id: str) -> bool:
        # The header names the Transit key; whether the engine still has it only Vault can say.
        return key_id.startswith(KEY_ID_PREFIX)

    def _resolve(self, header: envelope.Header) -> bytes:
        if not self.knows(header.key_id):
            raise KeyNotConfigured(header.key_id, "it is not a Vault Transit key (KMS_BACKEND=transit)")
        if not header.wrapped_key:
            raise DecryptionFailed(f"state encrypted with key {header.key_id} carries no wrapped data key")
        # The header names the Transit key that wrapped the data key, so states stay readable after KMS_TRANSIT_KEY
        # changes, as long as the old key still exists in the engine.
        slot = (header.key_id.removeprefix(KEY_ID_PREFIX), header.wrapped_key)
        with self._lock:
            if slot in self._cache:
                self._cache.move_to_end(slot)
                return self._cache[slot]
        data_key = self._unwrap(*slot)
        self._remember(slot, data_key)
        return data_key

    def _unwrap(self, key: str, wrapped: bytes) -> bytes:
        action = f"decrypt a data key with the {self._describe(key)}"
        try:
            response = self._client.call(
                action,
                lambda c: c.secrets.transit.decrypt_data(
                    key, wrapped.decode(errors="replace"), mount_point=self._engine
                ),
            )
        except VaultRequestRejected as exc:
            raise DecryptionFailed(f"Vault Transit cannot unwrap the data key of this state: {exc.detail}") from exc
        data_key = _b64(section(response, "data", action).get("plaintext"))
        if len(data_key) not in (16, 24, 32):
            raise DecryptionFailed(f"could not {action}: Vault returned no usable data key")
        return data_key

    def _remember(self, slot: tuple[str, bytes], data_key: bytes) -> None:
        with self._lock:
            self._cache[slot] = data_key
            self._cache.move_to_end(slot)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


def _b64(value: object) -> bytes:
    try:
        return base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        return b""
