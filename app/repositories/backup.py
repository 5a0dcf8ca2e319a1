"""The logical backup: every table that matters as JSON lines and every state version's plaintext as a file, in
one directory (``flask export``), and its restore into another server (``flask import``).

The export is independent of the storage, database and KMS of either side: versions are decrypted on export and
encrypted with the target's key on import, and ids, serials, lineages, numbers, times and current pointers are
kept. Locks, pending uploads, ``terraform login`` codes and refresh tokens are left out (see the README).

Import is idempotent: a row already present with the same key and the same values (and, for a version, the same
bytes in storage) is skipped; a row that differs is reported as a conflict and never overwritten. Workspaces get
their current pointers last, once their versions are in, so an interrupted import leaves no pointer to a missing
version and a re-run completes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.core.clock import utcnow
from app.core.errors import NotFound, StatesmanError
from app.drivers.storage.base import CHUNK_SIZE
from app.extensions import db, drivers
from app.models import (
    AgentPool,
    ApiToken,
    AuditEvent,
    Membership,
    Organization,
    Permission,
    Role,
    RoleAssignment,
    RolePermission,
    SigningKey,
    StateVersion,
    User,
    Workspace,
    WorkspaceTag,
    WorkspaceVariable,
)
from app.repositories import signing_keys, variables
from app.repositories.migration_status import schema_status
from app.repositories.state_versions import (
    COPIES,
    Copy,
    copy_context,
    encryption_context,
    open_copy,
    open_version,
)

FORMAT = "statesman-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
OBJECTS = "objects"
STATE_SUFFIX = "tfstate"
BATCH = 500
POINTERS = ("current_version_id", "version_counter")


class ExportError(StatesmanError):
    """The export directory cannot be used (exists, incomplete, corrupt, or from an unknown format)."""


@dataclass(frozen=True)
class Table:
    """A table as the export holds it: its file, its key, and which columns are not compared on re-import.

    ``volatile`` columns record activity (last use, last change), not identity. ``local`` columns are the server's
    own (storage keys, KMS key ids) and never leave it.
    """

    model: Any
    key: tuple[str, ...] = ("id",)
    volatile: tuple[str, ...] = ()
    local: tuple[str, ...] = ()

    @property
    def table(self) -> sa.Table:
        table: sa.Table = self.model.__table__
        return table

    @property
    def file(self) -> str:
        return f"{self.table.name}.jsonl"

    def exported_columns(self) -> list[sa.Column[Any]]:
        return [column for column in self.table.columns if column.name not in self.local]


# In the order rows must be inserted (foreign keys); versions and audit events come after the tables.
TABLES = (
    Table(Organization, volatile=("updated_at",)),
    Table(User, volatile=("updated_at",)),
    Table(Membership),
    Table(Role, volatile=("updated_at",)),
    Table(Permission, volatile=("updated_at",)),
    Table(RolePermission),
    Table(RoleAssignment),
    # the pointers are exported with the row and applied by the last step, once the versions are in
    Table(Workspace, volatile=("updated_at", *POINTERS)),
    Table(WorkspaceTag, key=("workspace_id", "key")),
    # the value travels decrypted (as the states do) and is sealed again with the target's key
    Table(WorkspaceVariable, volatile=("updated_at",), local=("sealed_value", "kms_key_id")),
    Table(AgentPool),
    Table(ApiToken, volatile=("last_used_at",)),
    Table(SigningKey, key=("kid",), local=("private_key", "kms_key_id")),
)
VERSIONS = Table(
    StateVersion,
    local=(
        "storage_key",
        "kms_key_id",
        *(copy.key for copy in COPIES),
        *(copy.kms for copy in COPIES),
    ),
)
AUDIT = Table(AuditEvent)
ALL_TABLES = (*TABLES, VERSIONS, AUDIT)
# Tables whose integer ids come from a sequence on PostgreSQL: it must move past the imported ids.
SEQUENCED = (Membership, RolePermission, RoleAssignment, AuditEvent)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _decode(column: sa.Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(column.type, sa.LargeBinary):
        return base64.b64decode(value)
    return value


def _create_private(path: Path) -> IO[bytes]:
    """A new file only the owner can read: the export holds plaintext states and token hashes."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _object_name(version_id: str, copy: Copy | None = None) -> str:
    return f"{version_id}.{copy.kind if copy else STATE_SUFFIX}"


class _Lines:
    """A JSON-lines file being written, with its row count and SHA-256."""

    def __init__(self, path: Path) -> None:
        self.handle = _create_private(path)
        self.digest = hashlib.sha256()
        self.count = 0

    def write(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        self.handle.write(line)
        self.digest.update(line)
        self.count += 1

    def close(self) -> None:
        if self.handle.closed:
            return
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()


class Exporter:
    """Writes an export into a new (or empty) directory: ``write_tables``, then each of ``version_ids`` with
    ``write_version``, then ``finish``. The manifest is written last: without it the export is incomplete."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and any(self.directory.iterdir()):
            raise ExportError(f"{self.directory} is not empty; export into a new directory")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        (self.directory / OBJECTS).mkdir(mode=0o700)
        self.files: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.counters: dict[str, int] = {}
        self.currents: dict[str, str | None] = {}
        self.started_at = utcnow()
        self._versions = _Lines(self.directory / VERSIONS.file)
        self._open: list[_Lines] = [self._versions]
        self.skipped: list[str] = []

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close every file still open (an export that failed stays without its manifest)."""
        for lines in self._open:
            lines.handle.close()

    def write_tables(self) -> None:
        """Every metadata table but versions and audit events; workspaces are read once, as of now."""
        for spec in TABLES:
            lines = self._lines(spec)
            for row in self._rows(spec):
                if spec.model is Workspace:
                    self.counters[row["id"]] = row["version_counter"]
                    self.currents[row["id"]] = row["current_version_id"]
                if spec.model is SigningKey:
                    row["private_key_pem"] = self._unsealed(row["kid"])
                if spec.model is WorkspaceVariable:
                    row["value"] = self._variable_value(row["id"])
                lines.write(row)
            self._close(spec.file, lines)

    def version_ids(self) -> list[str]:
        """The finalized versions of the exported workspaces, as of the moment they were read."""
        query = (
            db.select(StateVersion.id, StateVersion.workspace_id, StateVersion.number)
            .where(StateVersion.status == "finalized")
            .order_by(StateVersion.workspace_id, StateVersion.number)
        )
        rows = db.session.execute(query).all()
        db.session.rollback()
        # a version written after the workspaces were read would be past their counters: left for the next export
        return [vid for vid, workspace_id, number in rows if number <= self.counters.get(workspace_id, -1)]

    def write_version(self, version_id: str) -> None:
        """Write one version's row and its decrypted bytes (and JSON copies), each checked against its SHA-256."""
        version = db.session.get(StateVersion, version_id)
        try:
            if version is None:
                raise NotFound(f"state version {version_id} was deleted during the export")
            row = {c.name: _encode(getattr(version, c.key)) for c in VERSIONS.exported_columns()}
            self._write_object(_object_name(version.id), open_version(version), version.sha256)
            for copy in COPIES:
                if getattr(version, copy.key):
                    name = _object_name(version.id, copy)
                    self._write_object(name, open_copy(version, copy), getattr(version, copy.sha256))
        except NotFound:
            # retention removed an old version meanwhile; the current one must never go missing
            workspace_id = version.workspace_id if version is not None else None
            if workspace_id is None or self.currents.get(workspace_id) == version_id:
                raise ExportError(
                    f"the current state version {version_id} disappeared during the export; "
                    "stop writes and export again"
                ) from None
            self.skipped.append(version_id)
            return
        finally:
            db.session.rollback()
        self._versions.write(row)

    def finish(self) -> dict[str, Any]:
        """Write the audit events and then the manifest; returns the manifest."""
        self._close(VERSIONS.file, self._versions)
        lines = self._lines(AUDIT)
        for row in self._rows(AUDIT):
            lines.write(row)
        self._close(AUDIT.file, lines)
        status = schema_status(db.engine)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": self.started_at.isoformat(),
            "source": {
                "schema_revision": status.database_revision,
                "database": db.engine.dialect.name,
                "storage": drivers().storage.name,
                "kms": drivers().kms.name,
                "kms_key_id": drivers().kms.key_id,
            },
            "counts": {name.removesuffix(".jsonl"): entry["rows"] for name, entry in self.files.items()},
            "files": self.files,
            "objects": self.objects,
            "skipped_versions": self.skipped,
        }
        with _create_private(self.directory / MANIFEST) as handle:
            handle.write(json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        return manifest

    def _lines(self, spec: Table) -> _Lines:
        lines = _Lines(self.directory / spec.file)
        self._open.append(lines)
        return lines

    def _rows(self, spec: Table) -> Iterator[dict[str, Any]]:
        columns = spec.exported_columns()
        query = sa.select(*columns).order_by(*(spec.table.c[name] for name in spec.key))
        for row in db.session.execute(query).mappings().yield_per(BATCH):
            yield {name: _encode(value) for name, value in row.items()}
        db.session.rollback()

    def _variable_value(self, variable_id: str) -> str:
        variable = db.session.get(WorkspaceVariable, variable_id)
        assert variable is not None
        return variables.revealed_value(variable)

    def _unsealed(self, kid: str) -> str:
        key = db.session.get(SigningKey, kid)
        assert key is not None
        return signing_keys.unseal_private_key(key).decode()

    def _write_object(self, name: str, chunks: Iterable[bytes], expected: str) -> None:
        digest, size = hashlib.sha256(), 0
        with _create_private(self.directory / OBJECTS / name) as handle:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if digest.hexdigest() != expected:
            raise ExportError(f"stored object {name} does not match its recorded SHA-256; it is corrupt at the source")
        self.objects[name] = {"sha256": expected, "size": size}

    def _close(self, name: str, lines: _Lines) -> None:
        lines.close()
        self.files[name] = {"sha256": lines.digest.hexdigest(), "rows": lines.count}


@dataclass
class ImportReport:
    """What an import did: rows inserted and already present per table, and the conflicts it left alone."""

    inserted: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)

    def count(self, table: str, inserted: bool) -> None:
        counts = self.inserted if inserted else self.present
        counts[table] = counts.get(table, 0) + 1


class Importer:
    """Restores an export: ``import_tables``, then each of ``version_rows`` with ``import_version``, then
    ``finish`` (audit events, current pointers, sequences). Every step may be run again."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.manifest = self._read_manifest()
        self.report = ImportReport()
        target = schema_status(db.engine)
        self.schema_differs = target.database_revision != self.manifest["source"].get("schema_revision")

    def import_tables(self) -> None:
        """Every metadata table but versions and audit events."""
        for spec in TABLES:
            self._import_rows(spec, self._lines(spec))

    def version_rows(self) -> list[dict[str, Any]]:
        """The exported versions, in history order per workspace."""
        return list(self._lines(VERSIONS))

    def import_version(self, row: dict[str, Any]) -> None:
        """Store one version through the target's storage, encrypted with its key, unless it is already there."""
        name = VERSIONS.table.name
        version_id = row["id"]
        existing = db.session.get(StateVersion, version_id)
        if existing is not None:
            problem = self._differs(VERSIONS, row, existing) or self._check_stored(existing)
            db.session.rollback()
            if problem:
                self.report.conflicts.append(f"{name} {version_id}: {problem}")
            else:
                self.report.count(name, inserted=False)
            return
        if db.session.get(Workspace, row["workspace_id"]) is None:
            missing = row["workspace_id"]
            self.report.conflicts.append(f"{name} {version_id}: its workspace {missing} is not in the target")
            return
        values = self._decoded(VERSIONS, row)
        written: list[str] = []
        try:
            values.update(self._store(values, written))
            db.session.add(StateVersion(**values))
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            self._delete(written)
            self.report.conflicts.append(
                f"{name} {version_id}: the target's workspace {row['workspace_id']} already has a version "
                f"number {row['number']}"
            )
            return
        except BaseException:
            db.session.rollback()
            self._delete(written)
            raise
        self.report.count(name, inserted=True)

    def finish(self) -> ImportReport:
        """Audit events, then the workspaces' current pointers, then the sequences; returns the report."""
        self._import_rows(AUDIT, self._lines(AUDIT))
        self._set_pointers()
        self._advance_sequences()
        return self.report

    # --- reading the export ---------------------------------------------------------------------------------------

    def _read_manifest(self) -> dict[str, Any]:
        path = self.directory / MANIFEST
        if not path.is_file():
            raise ExportError(f"{self.directory} has no {MANIFEST}: not an export, or an export that did not finish")
        manifest: dict[str, Any] = json.loads(path.read_text())
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise ExportError(
                f"{path}: format {manifest.get('format')!r} version {manifest.get('format_version')!r}; "
                f"this server reads {FORMAT!r} version {FORMAT_VERSION}"
            )
        for spec in ALL_TABLES:
            entry = manifest["files"].get(spec.file)
            if entry is None:
                raise ExportError(f"the manifest lists no {spec.file}")
            if _file_sha256(self.directory / spec.file) != entry["sha256"]:
                raise ExportError(f"{spec.file} does not match the SHA-256 in the manifest; the export is damaged")
        return manifest

    def _lines(self, spec: Table) -> Iterator[dict[str, Any]]:
        known = {column.name for column in spec.exported_columns()} | {"private_key_pem", "value"}
        with open(self.directory / spec.file, "rb") as handle:
            for number, line in enumerate(handle, 1):
                row: dict[str, Any] = json.loads(line)
                unknown = set(row) - known
                if unknown:
                    raise ExportError(
                        f"{spec.file} line {number}: columns {sorted(unknown)} are unknown to this server; "
                        "upgrade it (flask db upgrade) to the exporting server's version first"
                    )
                yield row

    def _decoded(self, spec: Table, row: dict[str, Any]) -> dict[str, Any]:
        columns = spec.table.columns
        return {name: _decode(columns[name], value) for name, value in row.items() if name in columns}

    # --- metadata rows --------------------------------------------------------------------------------------------

    def _import_rows(self, spec: Table, rows: Iterable[dict[str, Any]]) -> None:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                self._import_batch(spec, batch)
                batch = []
        if batch:
            self._import_batch(spec, batch)

    def _import_batch(self, spec: Table, rows: list[dict[str, Any]]) -> None:
        name = spec.table.name
        existing = self._existing(spec, rows)
        missing = []
        for row in rows:
            key = tuple(row[column] for column in spec.key)
            found = existing.get(key)
            if found is None:
                missing.append(row)
                continue
            problem = self._differs(spec, row, found)
            if problem:
                self.report.conflicts.append(f"{name} {'/'.join(map(str, key))}: {problem}")
            else:
                self.report.count(name, inserted=False)
        if not missing:
            return
        try:
            db.session.execute(sa.insert(spec.table), [self._insertable(spec, row) for row in missing])
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            self._insert_one_by_one(spec, missing)
            return
        for _ in missing:
            self.report.count(name, inserted=True)

    def _insert_one_by_one(self, spec: Table, rows: list[dict[str, Any]]) -> None:
        """After a batch failed: find the rows that clash with the target's own (a name taken by another id)."""
        name = spec.table.name
        for row in rows:
            try:
                db.session.execute(sa.insert(spec.table), [self._insertable(spec, row)])
                db.session.commit()
            except IntegrityError as exc:
                db.session.rollback()
                key = "/".join(str(row[column]) for column in spec.key)
                reason = type(exc.orig).__name__ if exc.orig is not None else "IntegrityError"
                self.report.conflicts.append(
                    f"{name} {key}: refused by the target ({reason}): another row has the same unique values, "
                    "or a row it refers to is missing"
                )
            else:
                self.report.count(name, inserted=True)

    def _insertable(self, spec: Table, row: dict[str, Any]) -> dict[str, Any]:
        values = self._decoded(spec, row)
        if spec.model is Workspace:
            values.update(current_version_id=None, version_counter=0)  # set by _set_pointers once versions are in
        if spec.model is SigningKey:
            values["private_key"], values["kms_key_id"] = signing_keys.seal_private_key(
                row["kid"], row["private_key_pem"].encode()
            )
        if spec.model is WorkspaceVariable:
            values["sealed_value"], values["kms_key_id"] = variables.seal_value(row["id"], row["value"])
        return values

    def _existing(self, spec: Table, rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], Any]:
        keys = [tuple(row[column] for column in spec.key) for row in rows]
        columns = [spec.table.c[column] for column in spec.key]
        where = columns[0].in_([k[0] for k in keys]) if len(columns) == 1 else sa.tuple_(*columns).in_(keys)
        found = db.session.execute(sa.select(spec.table).where(where)).mappings().all()
        db.session.rollback()
        return {tuple(row[column] for column in spec.key): row for row in found}

    def _differs(self, spec: Table, row: dict[str, Any], found: Any) -> str | None:
        """The first column whose target value differs from the exported one, described; None when all agree."""
        values = self._decoded(spec, row)
        for column, exported in values.items():
            if column in spec.volatile or column in spec.local:
                continue
            current = found[column] if isinstance(found, Mapping) else getattr(found, column)
            if current != exported:
                return f"already in the target with another {column} ({current!r}, the export has {exported!r})"
        return None

    # --- versions -------------------------------------------------------------------------------------------------

    def _store(self, values: dict[str, Any], written: list[str]) -> dict[str, Any]:
        """Encrypt and store the version's objects under keys of its own; the columns that point at them."""
        workspace_id, version_id = values["workspace_id"], values["id"]
        kms, storage = drivers().kms, drivers().storage
        key = f"{workspace_id}/{version_id}"
        written.append(key)
        chunks = self._object_chunks(_object_name(version_id), values["sha256"])
        storage.put(key, kms.encrypt(chunks, encryption_context(workspace_id, version_id)))
        columns: dict[str, Any] = {"storage_key": key, "kms_key_id": kms.key_id}
        for copy in COPIES:
            sha256 = values.get(copy.sha256)
            if not sha256:
                continue
            key = f"{workspace_id}/{version_id}-{copy.kind}"
            written.append(key)
            chunks = self._object_chunks(_object_name(version_id, copy), sha256)
            storage.put(key, kms.encrypt(chunks, copy_context(copy, workspace_id, version_id)))
            columns.update({copy.key: key, copy.kms: kms.key_id})
        return columns

    def _object_chunks(self, name: str, expected: str) -> Iterator[bytes]:
        """The file's bytes; raises at the end when they do not match (the storage then keeps nothing)."""
        listed = self.manifest["objects"].get(name)
        if listed is None or listed["sha256"] != expected:
            raise ExportError(f"the manifest does not list {name} with the version's SHA-256")
        digest = hashlib.sha256()
        try:
            handle = open(self.directory / OBJECTS / name, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise ExportError(f"{OBJECTS}/{name} is missing from the export") from None
        with handle:
            while chunk := handle.read(CHUNK_SIZE):
                digest.update(chunk)
                yield chunk
        if digest.hexdigest() != expected:
            raise ExportError(f"{OBJECTS}/{name} does not match its SHA-256; the export is damaged")

    def _check_stored(self, version: StateVersion) -> str | None:
        """Whether the target's objects of an already imported version hold the exported bytes."""
        sources: list[tuple[str, Callable[[], Iterable[bytes]], str | None]] = [
            ("state", partial(open_version, version), version.sha256)
        ]
        for copy in COPIES:
            if getattr(version, copy.key):
                sources.append((copy.kind, partial(open_copy, version, copy), getattr(version, copy.sha256)))
        for what, opened, expected in sources:
            digest = hashlib.sha256()
            try:
                for chunk in opened():
                    digest.update(chunk)
            except NotFound:
                return f"its {what} object is missing from the target's storage"
            if digest.hexdigest() != expected:
                return f"its {what} object in the target's storage does not hold the exported bytes"
        return None

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            drivers().storage.delete(key)

    # --- the last steps -------------------------------------------------------------------------------------------

    def _set_pointers(self) -> None:
        """Give each workspace its exported current version and counter, unless the target moved it meanwhile."""
        table = Workspace.__table__
        for row in self._lines(next(spec for spec in TABLES if spec.model is Workspace)):
            wanted = (row["current_version_id"], row["version_counter"])
            found = db.session.execute(
                sa.select(table.c.current_version_id, table.c.version_counter).where(table.c.id == row["id"])
            ).first()
            if found is None or tuple(found) == wanted:
                db.session.rollback()
                continue
            if tuple(found) != (None, 0):
                db.session.rollback()
                self.report.conflicts.append(
                    f"workspaces {row['id']}: its current version in the target is {found[0]} (counter {found[1]}), "
                    f"the export has {wanted[0]} (counter {wanted[1]}); left as it is"
                )
                continue
            if wanted[0] is not None and db.session.get(StateVersion, wanted[0]) is None:
                db.session.rollback()
                self.report.conflicts.append(
                    f"workspaces {row['id']}: its current version {wanted[0]} was not imported; no pointer set"
                )
                continue
            db.session.execute(
                sa.update(table)
                .where(table.c.id == row["id"], table.c.version_counter == 0)
                .values(current_version_id=wanted[0], version_counter=wanted[1])
            )
            db.session.commit()

    def _advance_sequences(self) -> None:
        """PostgreSQL hands out serial ids from a sequence that explicit ids do not move: move it past them.

        (SQLite and MySQL continue after the largest id by themselves.)
        """
        if db.engine.dialect.name != "postgresql":
            return
        for model in SEQUENCED:
            name = model.__tablename__
            db.session.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                )
            )
        db.session.commit()
