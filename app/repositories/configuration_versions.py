"""Configuration versions: the ``.tar.gz`` of a working directory that a remote run executes.

An upload is spooled (bounded), unpacked into a scratch directory to prove it is safe (``app.core.archives``), and
only then stored, encrypted like a state, under ``<workspace id>/configuration/<version id>``. A refused archive
leaves the version ``errored`` with the reason, so the client polling it sees why. An upload is accepted once;
the same bytes again are a harmless retry, different bytes a conflict.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from app.core import policy
from app.core.archives import unpack_archive
from app.core.clock import utcnow
from app.core.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from app.core.ids import new_id
from app.core.statefile import READ_CHUNK, spool_body
from app.drivers.kms.base import seal
from app.extensions import db, drivers
from app.models import ConfigurationVersion, Workspace
from app.repositories.audit import record_event
from app.repositories.guard import WorkspaceGuard

MAX_ERROR = 1024


def create_configuration_version(
    guard: WorkspaceGuard, *, speculative: bool = False, auto_queue_runs: bool = True
) -> ConfigurationVersion:
    """A new pending version of the workspace's configuration (``unit.write``: it is what a run will execute)."""
    guard.require(policy.WRITE)
    version = ConfigurationVersion(
        id=new_id("cv"),
        workspace_id=guard.workspace.id,
        status="pending",
        speculative=speculative,
        auto_queue_runs=auto_queue_runs,
        created_by=guard.actor,
        created_at=utcnow(),
    )
    db.session.add(version)
    record_event(
        "configuration.create", "ok", guard.actor, workspace=guard.workspace, commit=False, version_id=version.id
    )
    db.session.commit()
    return version


def get_configuration_version(version_id: str) -> ConfigurationVersion | None:
    """The version by id in any workspace, or None (callers check visibility)."""
    return db.session.get(ConfigurationVersion, version_id)


def list_configuration_versions(
    workspace: Workspace, offset: int = 0, limit: int = 20
) -> tuple[list[ConfigurationVersion], int]:
    """A page of the workspace's versions, newest first, and how many there are."""
    where = ConfigurationVersion.workspace_id == workspace.id
    total = db.session.scalar(db.select(db.func.count()).select_from(ConfigurationVersion).where(where)) or 0
    page = db.session.scalars(
        db.select(ConfigurationVersion)
        .where(where)
        .order_by(ConfigurationVersion.created_at.desc(), ConfigurationVersion.id)
        .offset(offset)
        .limit(limit)
    )
    return list(page), total


def receive_archive(version: ConfigurationVersion, chunks: Iterable[bytes], limit: int) -> ConfigurationVersion:
    """Check and store the uploaded archive of a pending version; ``InvalidInput``/``PayloadTooLarge`` say why a
    refused one was refused (the version is then ``errored`` with that reason)."""
    try:
        received, size, _md5, digest = spool_body(
            chunks,
            limit,
            too_large=f"the configuration archive is larger than the limit of {limit} bytes",
            empty="the upload is empty: expected a .tar.gz of the configuration",
        )
    except (InvalidInput, PayloadTooLarge) as refused:
        if version.status == "pending":
            _errored(version, refused.message)
        raise
    with received as spool:
        if version.status == "uploaded":
            if version.sha256 == digest:
                return version  # a retried upload of the same archive
            raise Conflict(f"configuration version {version.id!r} already has its archive; create a new version")
        if version.status != "pending":
            raise Conflict(f"configuration version {version.id!r} is {version.status}; create a new version")
        spool.seek(0)
        try:
            with tempfile.TemporaryDirectory(prefix="statesman-cv-") as scratch:
                unpack_archive(spool, Path(scratch))
        except (InvalidInput, PayloadTooLarge) as refused:
            _errored(version, refused.message)
            raise
        spool.seek(0)
        # Named by content: two racing uploads of the same archive write the same object.
        key = f"{version.workspace_id}/configuration/{version.id}-{digest[:16]}"
        kms = drivers().kms
        drivers().storage.put(key, kms.encrypt(iter(lambda: spool.read(READ_CHUNK), b""), _context(version.id)))
    return _publish(version, key, kms.key_id, size, digest)


def _publish(version: ConfigurationVersion, key: str, kms_key_id: str, size: int, digest: str) -> ConfigurationVersion:
    """Make the stored archive the version's, unless a concurrent upload already did (one conditional UPDATE)."""
    won = db.session.execute(
        db.update(ConfigurationVersion)
        .where(ConfigurationVersion.id == version.id, ConfigurationVersion.status == "pending")
        .values(
            storage_key=key, kms_key_id=kms_key_id, size=size, sha256=digest, status="uploaded", uploaded_at=utcnow()
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    db.session.commit()
    db.session.refresh(version)
    if won == 1 or (version.status == "uploaded" and version.sha256 == digest):
        return version
    if version.storage_key != key:
        drivers().storage.delete(key)
    raise Conflict(f"configuration version {version.id!r} already has its archive; create a new version")


def open_archive(version: ConfigurationVersion) -> Iterator[bytes]:
    """The archive's plain bytes (for the agent that runs it); ``NotFound`` before it was uploaded."""
    if version.status != "uploaded" or version.storage_key is None:
        raise NotFound(f"configuration version {version.id!r} has no archive yet")
    return drivers().kms.decrypt(drivers().storage.open(version.storage_key), _context(version.id))


def reencrypt_archives() -> int:
    """Re-encrypt every archive under the KMS driver's current key (``flask kms rotate``); returns how many moved."""
    kms, storage = drivers().kms, drivers().storage
    moved = 0
    stale = db.select(ConfigurationVersion).where(
        ConfigurationVersion.status == "uploaded", ConfigurationVersion.kms_key_id != kms.key_id
    )
    for version in db.session.scalars(stale).all():
        assert version.storage_key is not None
        plain = b"".join(open_archive(version))
        under = hashlib.sha256(kms.key_id.encode()).hexdigest()[:8]
        new_key = f"{version.workspace_id}/configuration/{version.id}-{(version.sha256 or '')[:16]}-{under}"
        storage.put(new_key, [seal(kms, plain, _context(version.id))])
        old_key, version.storage_key, version.kms_key_id = version.storage_key, new_key, kms.key_id
        db.session.commit()
        storage.delete(old_key)  # only once the row points at the new object
        moved += 1
    return moved


def sealed_key_ids() -> set[str]:
    """Every KMS key id an uploaded archive is encrypted under."""
    uploaded = ConfigurationVersion.status == "uploaded"
    return set(db.session.scalars(db.select(ConfigurationVersion.kms_key_id).where(uploaded).distinct())) - {None}


def _errored(version: ConfigurationVersion, reason: str) -> None:
    version.status, version.error_message = "errored", reason[:MAX_ERROR]
    db.session.commit()


def _context(version_id: str) -> bytes:
    return f"configuration:{version_id}".encode()
