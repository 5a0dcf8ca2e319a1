"""The storage of the Go HTTP state backend (``/state/<project>/<name>``): state ids, layouts and encryption.

Its ids are hashes, so states are found from a list of ``project/name[:password]`` entries: with basic auth the
password was mixed into the id (``sha256(password + ":" + sha256(project + "-" + name))``), with JWT auth it was not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import SQLAlchemyError

from app.core.errors import BackendUnavailable, DecryptionFailed, InvalidInput
from app.drivers.kms.vault import parse_kv_path
from app.drivers.kms.vault_client import VaultClient, section
from app.drivers.sources.blobs import BlobSource, open_blobs
from app.drivers.sql import create_engine, postgres_url
from app.drivers.storage.base import ObjectNotFound
from config import Config

SUFFIX = ".tfstate"
NONCE_SIZE = 12
TAG_SIZE = 16
TRANSIT_PREFIX = b"vault:v"


def state_id(project: str, name: str, password: str | None = None) -> str:
    """The id the backend stored ``project/name`` under (``password``: its basic-auth password, if it used one)."""
    base = hashlib.sha256(f"{project}-{name}".encode()).hexdigest()
    return hashlib.sha256(f"{password}:{base}".encode()).hexdigest() if password else base


@dataclass(frozen=True)
class Entry:
    """One line of the entries file: the state's project and name, and the password its id was computed with."""

    project: str
    name: str
    password: str | None

    @property
    def path(self) -> str:
        return f"{self.project}/{self.name}"

    @property
    def state_id(self) -> str:
        return state_id(self.project, self.name, self.password)


def parse_entries(text: str, default_password: str | None = None) -> list[Entry]:
    """Entries from lines ``project/name[:password]`` (blank lines and ``#`` comments skipped); ``InvalidInput``
    names the first malformed line. ``default_password`` applies to lines without one."""
    entries: list[Entry] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        path, colon, password = line.partition(":")
        project, _, name = path.partition("/")
        if not project or not name or "/" in name or (colon and not password):
            raise InvalidInput(f"entries line {number}: expected project/name[:password], got {line.split(':')[0]!r}")
        entries.append(Entry(project, name, password if colon else default_password))
    return entries


@dataclass(frozen=True)
class StoredState:
    """A state as the backend stored it: its id, its (possibly encrypted) bytes and when it was written."""

    state_id: str
    data: bytes
    modified: datetime | None


class StateSource(Protocol):
    """The states of one backend store, by id."""

    description: str

    def ids(self) -> list[str]:
        """Every state id stored."""
        ...

    def read(self, state_id: str) -> StoredState:
        """The state stored under ``state_id``; raises ``ObjectNotFound``."""
        ...

    def close(self) -> None: ...


class BlobStates:
    """``<id>.tfstate`` files of a directory, or objects at the root (or prefix) of a bucket."""

    def __init__(self, blobs: BlobSource) -> None:
        self.blobs = blobs
        self.description = blobs.description
        self._modified: dict[str, datetime | None] = {}

    def ids(self) -> list[str]:
        for blob in self.blobs.list():
            if "/" not in blob.key and blob.key.endswith(SUFFIX):
                self._modified[blob.key.removesuffix(SUFFIX)] = blob.modified
        return sorted(self._modified)

    def read(self, state_id: str) -> StoredState:
        return StoredState(state_id, self.blobs.read(state_id + SUFFIX), self._modified.get(state_id))

    def close(self) -> None:
        self.blobs.close()


class TableStates:
    """Rows of the backend's PostgreSQL table ``states`` (``state_id varchar(255) primary key, state_data bytea``)."""

    def __init__(self, url: str, table: str = "states") -> None:
        self.engine = create_engine(url)
        self.table = sa.table(table, sa.column("state_id", sa.String), sa.column("state_data", sa.LargeBinary))
        self.description = f"postgres table {table} at {self.engine.url.render_as_string(hide_password=True)}"

    def ids(self) -> list[str]:
        return sorted(str(value) for value in self._column(sa.select(self.table.c.state_id)))

    def read(self, state_id: str) -> StoredState:
        found = self._column(sa.select(self.table.c.state_data).where(self.table.c.state_id == state_id))
        if not found or found[0] is None:
            raise ObjectNotFound(f"no row {state_id} in {self.description}")
        return StoredState(state_id, bytes(found[0]), None)

    def _column(self, statement: sa.Select[Any]) -> list[Any]:
        try:
            with self.engine.connect() as connection:
                return list(connection.execute(statement).scalars())
        except SQLAlchemyError as exc:
            reason = exc.__cause__ or exc
            raise BackendUnavailable("import source", f"cannot read {self.description}: {reason}") from exc

    def close(self) -> None:
        self.engine.dispose()


def open_states(source: str, config: Config) -> StateSource:
    """``fs:DIR``, ``s3://bucket[/prefix]`` or ``postgres://...`` (a URL or a libpq ``key=value`` string)."""
    if source.startswith(("postgres://", "postgresql://", "postgresql+psycopg2://")) or "dbname=" in source:
        return TableStates(postgres_url(replace(config, postgres_connection=source), "--source"))
    return BlobStates(open_blobs(source, config))


class Decryptor(Protocol):
    """Turns stored bytes back into the state's plaintext."""

    def decrypt(self, data: bytes) -> bytes:
        """The plaintext; raises ``DecryptionFailed``."""
        ...


class NoDecryption:
    """States stored as they are."""

    def decrypt(self, data: bytes) -> bytes:
        return data


class AesDecryptor:
    """``nonce(12) || ciphertext || tag(16)``, AES-GCM without associated data."""

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise InvalidInput(f"the AES key must be 16, 24 or 32 bytes, not {len(key)}")
        self._aes = AESGCM(key)

    def decrypt(self, data: bytes) -> bytes:
        if len(data) < NONCE_SIZE + TAG_SIZE:
            raise DecryptionFailed("too short for nonce(12) || ciphertext || tag(16)")
        try:
            return self._aes.decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], None)
        except InvalidTag:
            raise DecryptionFailed("AES-GCM authentication failed (wrong key, or not encrypted with it)") from None


def parse_aes_key(encoded: str) -> bytes:
    """A base64 AES key (16, 24 or 32 bytes); ``InvalidInput`` otherwise."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise InvalidInput("the AES key is not valid base64") from None
    if len(key) not in (16, 24, 32):
        raise InvalidInput(f"the AES key must decode to 16, 24 or 32 bytes, not {len(key)}")
    return key


def read_kv_key(client: VaultClient, key_path: str) -> bytes:
    """The base64 AES key in the ``key`` field of a KV v2 secret (``secret/data/path`` or ``secret/path``)."""
    mount, path = parse_kv_path(key_path)
    action = f"read the KV v2 secret {mount}/{path}"
    response = client.call(
        action,
        lambda c: c.secrets.kv.v2.read_secret_version(path, mount_point=mount, raise_on_deleted_version=True),
    )
    fields = section(section(response, "data", action), "data", action)
    value = fields.get("key")
    if not isinstance(value, str):
        raise InvalidInput(f"the KV v2 secret {mount}/{path} has no string field 'key'")
    return parse_aes_key(value)


class TransitDecryptor:
    """The ASCII ``vault:v<N>:<base64>`` that Transit's encrypt endpoint returned, decrypted by Transit."""

    def __init__(self, client: VaultClient, key: str, mount: str = "transit") -> None:
        self._client, self._key, self._mount = client, key, mount

    def decrypt(self, data: bytes) -> bytes:
        if not data.startswith(TRANSIT_PREFIX):
            raise DecryptionFailed("not a Transit ciphertext (vault:v<N>:...)")
        action = f"decrypt with the Transit key {self._mount}/{self._key}"
        response = self._client.call(
            action,
            lambda c: c.secrets.transit.decrypt_data(
                self._key, data.decode("ascii", "replace").strip(), mount_point=self._mount
            ),
        )
        plaintext = section(response, "data", action).get("plaintext")
        try:
            return base64.b64decode(plaintext if isinstance(plaintext, str) else "", validate=True)
        except binascii.Error:
            raise DecryptionFailed(f"could not {action}: Vault's plaintext is not base64") from None


def entries_found(entries: list[Entry], ids: list[str]) -> Iterator[tuple[Entry, bool]]:
    """Each entry with whether its id is stored."""
    stored = set(ids)
    for entry in entries:
        yield entry, entry.state_id in stored
