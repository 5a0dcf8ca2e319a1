"""``KMS_BACKEND=vault``: the AES key is the ``key`` field of a KV v2 secret (``KMS_VAULT_KEY_PATH``).

Each KV version is a key: new states are sealed with the current version, and the key id in the header
(``vault:<mount>/<path>:v<version>``) names the version to read back older states with. The token needs ``read``
on ``<mount>/data/<path>`` and (for the readiness probe) ``<mount>/metadata/<path>``.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Iterable, Iterator

from app.core.errors import DecryptionFailed, KeyNotConfigured
from app.drivers.kms import envelope
from app.drivers.kms.vault_client import VaultClient, VaultPathMissing, section, startup_errors
from config import Config, ConfigError

KEY_FIELD = "key"
KEY_SIZES = (16, 24, 32)


def parse_kv_path(key_path: str) -> tuple[str, str]:
    """``(mount, path)`` of ``secret/data/statesman`` or ``secret/statesman``; the first segment is the mount."""
    mount, _, rest = key_path.strip("/").partition("/")
    # The API form puts "data/" after the mount; a secret literally named "data/..." cannot be told apart from it.
    path = rest.removeprefix("data/").strip("/")
    if not mount or not path:
        raise ConfigError(f"KMS_VAULT_KEY_PATH={key_path!r}: expected <mount>/<path>, e.g. secret/data/statesman")
    return mount, path


class VaultKeyManager:
    """Seals with the current KV version of the key; reads older versions back on demand and caches them."""

    name = "vault"

    def __init__(self, client: VaultClient, key_path: str) -> None:
        self._client = client
        self._mount, self._path = parse_kv_path(key_path)
        self._setting = f"KMS_VAULT_KEY_PATH={key_path}"
        self._keys: dict[int, bytes] = {}
        self._lock = threading.Lock()
        with startup_errors():
            self._use_version(None)

    @classmethod
    def from_config(cls, config: Config) -> VaultKeyManager:
        if not config.kms_vault_key_path:
            raise ConfigError("KMS_BACKEND=vault needs KMS_VAULT_KEY_PATH")
        client = VaultClient.from_config(config)
        try:
            return cls(client, config.kms_vault_key_path)
        except BaseException:
            client.close()
            raise

    def encrypt(self, chunks: Iterable[bytes], context: bytes) -> Iterator[bytes]:
        with self._lock:
            key, key_id = self._key, self.key_id
        return envelope.seal(chunks, context, key, key_id)

    def decrypt(self, chunks: Iterable[bytes], context: bytes) -> Iterator[bytes]:
        return envelope.unseal(chunks, context, self._resolve)

    def check(self) -> None:
        """Read the secret's metadata; when Vault has a newer version, new states are sealed with it."""
        action = f"read the metadata of {self._mount}/{self._path} ({self._setting})"
        metadata = section(
            self._client.call(
                action, lambda c: c.secrets.kv.v2.read_secret_metadata(self._path, mount_point=self._mount)
            ),
            "data",
            action,
        )
        if metadata.get("current_version") != self._version:
            self._use_version(None)

    def close(self) -> None:
        """Stop the Vault client's token renewal and close its session."""
        self._client.close()

    def _use_version(self, version: int | None) -> None:
        """Make ``version`` (``None``: the current one) the key new states are sealed with."""
        version, key = self._read(version)
        with self._lock:
            self._keys[version] = key
            self._version, self._key, self.key_id = version, key, self._key_id(version)

    def _key_id(self, version: int) -> str:
        return f"vault:{self._mount}/{self._path}:v{version}"

    def _read(self, version: int | None) -> tuple[int, bytes]:
        """The KV version number and decoded key; a deleted or missing secret raises ``VaultPathMissing``."""
        which = f"version {version} of " if version is not None else ""
        action = f"read {which}the KV v2 secret {self._mount}/{self._path} ({self._setting})"
        data = section(
            self._client.call(
                action,
                lambda c: c.secrets.kv.v2.read_secret_version(
                    self._path, version=version, mount_point=self._mount, raise_on_deleted_version=True
                ),
            ),
            "data",
            action,
        )
        fields, metadata = data.get("data"), data.get("metadata")
        if (
            not isinstance(fields, dict)
            or not isinstance(metadata, dict)
            or not isinstance(metadata.get("version"), int)
        ):
            raise ConfigError(f"{self._setting}: Vault's answer is not a KV v2 secret (is the mount KV version 1?)")
        return metadata["version"], self._decode(fields.get(KEY_FIELD), metadata["version"])

    def _decode(self, value: object, version: int) -> bytes:
        try:
            key = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except binascii.Error:
            key = b""
        if len(key) not in KEY_SIZES:
            raise ConfigError(
                f"{self._setting} (version {version}): field {KEY_FIELD!r} must be base64 of a 16, 24 or 32-byte key"
            )
        return key

    def _resolve(self, header: envelope.Header) -> bytes:
        version = self._version_of(header.key_id)
        with self._lock:
            cached = self._keys.get(version)
        if cached is not None:
            return cached
        try:
            _, key = self._read(version)
        except VaultPathMissing as exc:
            raise DecryptionFailed(f"the key {header.key_id} is not in Vault: {exc.detail}") from exc
        except ConfigError as exc:
            raise DecryptionFailed(f"the key {header.key_id} is unusable: {exc}") from exc
        with self._lock:
            self._keys[version] = key
        return key

    def _version_of(self, key_id: str) -> int:
        prefix = f"vault:{self._mount}/{self._path}:v"
        number = key_id.removeprefix(prefix)
        if number == key_id or not number.isdigit():
            raise KeyNotConfigured(key_id, f"it is not a version of {self._setting}")
        return int(number)

    def knows(self, key_id: str) -> bool:
        try:
            self._version_of(key_id)
        except KeyNotConfigured:
            return False
        return True
