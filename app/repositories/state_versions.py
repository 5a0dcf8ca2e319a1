"""State versions: the guarded write pipeline, reads, history, rollback and retention.

A write stores the encrypted object under a key that includes the new version id, then flips the workspace's
current pointer in one SQL statement that also checks nobody else flipped it first (``version_counter``).
A crash at any point leaves the old pointer, so readers see the old state or the new one, never a mix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ijson

from app.drivers.storage.base import ObjectNotFound
from app.errors import Conflict, NotFound, StatesmanError
from app.extensions import db
from app.models import StateVersion, Workspace, new_id, utcnow
from app.repositories.audit import record_event
from app.repositories.locks import check_write_lock
from app.runtime import config, drivers
from app.statefile import StateBody, StateSummary

_PUBLISH_ATTEMPTS = 3


@dataclass(frozen=True)
class WriteResult:
    """The version now current, and whether this write created it (False for an idempotent retry)."""

    version: StateVersion
    created: bool


def encryption_context(workspace_id: str, version_id: str) -> bytes:
    """Associated data binding a ciphertext to its workspace and version."""
    return f"statesman:state:{workspace_id}:{version_id}".encode()


def get_current_version(workspace: Workspace) -> StateVersion | None:
    """The workspace's current version, or None when it has no state."""
    if workspace.current_version_id is None:
        return None
    return db.session.get(StateVersion, workspace.current_version_id)


def get_version(workspace: Workspace, version_id: str) -> StateVersion | None:
    """A version of this workspace by id, or None (another workspace's ids are never found)."""
    version = db.session.get(StateVersion, version_id)
    return version if version is not None and version.workspace_id == workspace.id else None


def list_versions(workspace: Workspace, offset: int = 0, limit: int | None = None) -> tuple[list[StateVersion], int]:
    """A page of the workspace's versions, newest first, and the total count."""
    base = db.select(StateVersion).where(StateVersion.workspace_id == workspace.id, StateVersion.status == "finalized")
    total = db.session.scalar(db.select(db.func.count()).select_from(base.subquery())) or 0
    query = base.order_by(StateVersion.number.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query)), total


def open_version(version: StateVersion) -> Iterator[bytes]:
    """The plaintext bytes of a version, streamed and verified; raises ``NotFound`` if its object is gone."""
    try:
        stored = drivers().storage.open(version.storage_key)
    except ObjectNotFound:
        raise NotFound(f"state version {version.id} has no stored object") from None
    return drivers().kms.decrypt(stored, encryption_context(version.workspace_id, version.id))


def read_version_bytes(version: StateVersion) -> bytes:
    """All plaintext bytes of a version (small states, outputs, rollbacks)."""
    return b"".join(open_version(version))


def write_state(
    workspace: Workspace,
    body: StateBody,
    actor: str,
    *,
    lock_id: str | None = None,
    force: bool = False,
    version_id: str | None = None,
) -> WriteResult:
    """Store ``body`` as the workspace's new current version, enforcing the lock and the serial/lineage guard.

    ``force`` (audited) skips the serial and lineage checks, never the lock. ``version_id`` names the new version
    when the id was handed out before the bytes arrived (the TFC upload-URL flow). Raises ``LockConflict``,
    ``Conflict`` (guard) or ``InvalidInput`` (not a state).
    """
    summary = body.summary or body.validate()
    check_write_lock(workspace, lock_id)
    current = get_current_version(workspace)
    if _is_retry(current, body, summary):
        assert current is not None
        return WriteResult(current, created=False)
    try:
        _check_guard(current, summary, force)
    except Conflict as refused:
        record_event(
            "state.write", "conflict", actor, workspace=workspace, serial=summary.serial, reason=refused.message
        )
        raise
    version_id = version_id or new_id("sv")
    storage_key = f"{workspace.id}/{version_id}"
    kms = drivers().kms
    drivers().storage.put(storage_key, kms.encrypt(body.chunks(), encryption_context(workspace.id, version_id)))
    try:
        version = _publish(workspace, body, summary, actor, version_id, storage_key, kms.key_id, force)
    except _AlreadyWritten as landed:
        drivers().storage.delete(storage_key)
        return WriteResult(landed.version, created=False)
    except BaseException:
        drivers().storage.delete(storage_key)
        raise
    _apply_retention(workspace)
    return WriteResult(version, created=True)


def _is_retry(current: StateVersion | None, body: StateBody, summary: StateSummary) -> bool:
    return current is not None and current.serial == summary.serial and current.sha256 == body.sha256


def _check_guard(current: StateVersion | None, summary: StateSummary, force: bool) -> None:
    if current is None or force:
        return
    if current.lineage and summary.lineage != current.lineage:
        raise Conflict(
            f"lineage {summary.lineage!r} does not match the current state's lineage {current.lineage!r}: "
            "this is a different state. To replace it anyway, delete the workspace's state first, or repeat "
            "the write with ?force=true (needs delete permission; audited)"
        )
    if summary.serial < current.serial:
        raise Conflict(
            f"serial {summary.serial} is lower than the current serial {current.serial}: "
            "the state has moved on since it was read; pull the current state and try again"
        )
    if summary.serial == current.serial:
        raise Conflict(
            f"serial {summary.serial} equals the current serial but the content differs: "
            "a changed state must have a higher serial"
        )


def _publish(
    workspace: Workspace,
    body: StateBody,
    summary: StateSummary,
    actor: str,
    version_id: str,
    storage_key: str,
    key_id: str,
    forced: bool,
) -> StateVersion:
    """Insert the version row and flip the current pointer atomically; retried if another writer won the race."""
    for _ in range(_PUBLISH_ATTEMPTS):
        counter = workspace.version_counter
        version = StateVersion(
            id=version_id,
            workspace_id=workspace.id,
            number=counter + 1,
            serial=summary.serial,
            lineage=summary.lineage,
            md5=body.md5_hex,
            sha256=body.sha256,
            size=body.size,
            storage_key=storage_key,
            kms_key_id=key_id,
            outputs=summary.outputs,
            resource_count=summary.resource_count,
            terraform_version=summary.terraform_version,
            created_by=actor,
            created_at=utcnow(),
        )
        db.session.add(version)
        flipped = db.session.execute(
            db.update(Workspace)
            .where(Workspace.id == workspace.id, Workspace.version_counter == counter)
            .values(current_version_id=version_id, version_counter=counter + 1, updated_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        if flipped == 1:
            record_event(
                "state.write",
                "forced" if forced else "ok",
                actor,
                workspace=workspace,
                commit=False,
                serial=summary.serial,
                version_id=version_id,
                size=body.size,
            )
            db.session.commit()
            db.session.refresh(workspace)
            return version
        db.session.rollback()
        db.session.refresh(workspace)
        current = get_current_version(workspace)
        if _is_retry(current, body, summary):
            assert current is not None
            raise _AlreadyWritten(current)
        _check_guard(current, summary, forced)
    raise Conflict("the state kept changing while this write was being stored; try again")


class _AlreadyWritten(StatesmanError):
    """A concurrent identical write won the race (the caller's retry already landed)."""

    def __init__(self, version: StateVersion) -> None:
        super().__init__("already written")
        self.version = version


def _apply_retention(workspace: Workspace) -> None:
    """Delete versions beyond ``OPENTACO_MAX_VERSIONS`` (never the current one): rows first, then objects."""
    keep = config().max_versions
    if keep <= 0:
        return
    doomed = list(
        db.session.scalars(
            db.select(StateVersion)
            .where(StateVersion.workspace_id == workspace.id, StateVersion.id != workspace.current_version_id)
            .order_by(StateVersion.number.desc())
            .offset(keep - 1)
        )
    )
    if not doomed:
        return
    keys = [v.storage_key for v in doomed]
    for version in doomed:
        db.session.delete(version)
    db.session.commit()
    for key in keys:
        drivers().storage.delete(key)


def rollback_to(workspace: Workspace, version: StateVersion, actor: str, lock_id: str | None = None) -> WriteResult:
    """Make an earlier version current again as a new version with serial = current + 1."""
    current = get_current_version(workspace)
    if current is None:
        raise NotFound("the workspace has no state to roll back")
    document = json.loads(read_version_bytes(version))
    document["serial"] = current.serial + 1
    data = json.dumps(document, indent=2).encode() + b"\n"
    with StateBody.from_bytes(data, max(config().max_state_size, len(data))) as body:
        result = write_state(workspace, body, actor, lock_id=lock_id, force=True)
    record_event(
        "state.rollback",
        "ok",
        actor,
        workspace=workspace,
        from_version=version.id,
        version_id=result.version.id,
        serial=result.version.serial,
    )
    return result


def delete_workspace_state(workspace: Workspace, actor: str) -> None:
    """Delete the workspace with every version (rows first, then objects); the caller checked the lock."""
    workspace_id = workspace.id
    keys = list(
        db.session.scalars(db.select(StateVersion.storage_key).where(StateVersion.workspace_id == workspace_id))
    )
    record_event("workspace.delete", "ok", actor, workspace=workspace, commit=False, versions=len(keys))
    db.session.execute(db.delete(StateVersion).where(StateVersion.workspace_id == workspace.id))
    db.session.delete(workspace)
    db.session.commit()
    drivers().locks.release(workspace_id, None)  # the caller held it (or nobody did); it must not outlive the workspace
    for key in keys:
        drivers().storage.delete(key)


def versions_needing_rotation(batch: int = 100) -> Iterator[StateVersion]:
    """Every version (all workspaces) not encrypted with the current key, in batches."""
    key_id = drivers().kms.key_id
    last_id = ""
    while True:
        page = list(
            db.session.scalars(
                db.select(StateVersion)
                .where(StateVersion.kms_key_id != key_id, StateVersion.status == "finalized", StateVersion.id > last_id)
                .order_by(StateVersion.id)
                .limit(batch)
            )
        )
        if not page:
            return
        yield from page
        last_id = page[-1].id


def count_versions_needing_rotation() -> int:
    """How many versions are not encrypted with the current key."""
    key_id = drivers().kms.key_id
    return (
        db.session.scalar(
            db.select(db.func.count())
            .select_from(StateVersion)
            .where(StateVersion.kms_key_id != key_id, StateVersion.status == "finalized")
        )
        or 0
    )


def reencrypt_version(version: StateVersion) -> None:
    """Re-encrypt one version under the current key: new object, pointer switch, old object removed.

    Readers keep using the old object until the row points at the new one, so rotation runs live.
    """
    active = drivers()
    context = encryption_context(version.workspace_id, version.id)
    new_key = f"{version.workspace_id}/{version.id}-{new_id('k')[2:10]}"
    active.storage.put(new_key, active.kms.encrypt(open_version(version), context))
    old_key = version.storage_key
    version.storage_key = new_key
    version.kms_key_id = active.kms.key_id
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        active.storage.delete(new_key)
        raise
    active.storage.delete(old_key)


def get_versions_by_ids(ids: list[str]) -> dict[str, StateVersion]:
    """The versions with these ids, by id (missing ids are absent)."""
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    return {v.id: v for v in db.session.scalars(db.select(StateVersion).where(StateVersion.id.in_(wanted)))}


def find_versions_created_at(workspace: Workspace, created_at: datetime) -> list[StateVersion]:
    """The workspace's finalized versions created at exactly ``created_at`` (naive UTC, microseconds)."""
    return list(
        db.session.scalars(
            db.select(StateVersion).where(
                StateVersion.workspace_id == workspace.id,
                StateVersion.status == "finalized",
                StateVersion.created_at == created_at,
            )
        )
    )


class _ChunkReader:
    """A file-like view of a chunk iterator, so ijson can parse a stored state without holding it whole."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def outputs_document(version: StateVersion) -> bytes:
    """A state document with the version's outputs and no resources (what an outputs-only caller may read).

    ``terraform_remote_state`` reads outputs from it like from the full state; serial and lineage are the real ones.
    """
    document = {
        "version": 4,
        "terraform_version": version.terraform_version or "0.0.0",
        "serial": version.serial,
        "lineage": version.lineage,
        "outputs": read_outputs(version),
        "resources": [],
    }
    return json.dumps(document, indent=2).encode() + b"\n"


def get_version_by_id(version_id: str) -> StateVersion | None:
    """The version with this id in any workspace, or None (callers check visibility)."""
    return db.session.get(StateVersion, version_id)


def read_outputs(version: StateVersion) -> dict[str, Any]:
    """The stored state's ``outputs`` object with values, parsed as a stream (a 100 MB state is never held whole)."""
    try:
        outputs: Any = next(ijson.items(_ChunkReader(open_version(version)), "outputs", use_float=True), {})
    except ijson.JSONError:
        raise StatesmanError(f"stored state version {version.id} is not valid JSON") from None
    return outputs if isinstance(outputs, dict) else {}
