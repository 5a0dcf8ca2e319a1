"""State versions: the guarded write pipeline, reads, history, rollback, retention and the JSON copies.

A write stores the encrypted object under a key that includes the new version id, then, in one transaction,
flips the workspace's current pointer (only if nobody else flipped it first: ``version_counter``) and inserts or
finalizes the version row. A crash at any point leaves the old pointer, so readers see the old state or the new
one, never a mix. The loser of a race between writers gets a ``Conflict`` that says another write won.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import ijson
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from app.core import metrics, policy
from app.core.chunks import ChunkReader
from app.core.clock import utcnow
from app.core.errors import Conflict, LockConflict, NotFound, StatesmanError
from app.core.ids import new_id
from app.core.statefile import StateBody, StateSummary
from app.drivers.storage.base import ObjectNotFound
from app.extensions import config, db, drivers
from app.models import ConfigurationVersion, StateVersion, Workspace
from app.repositories.audit import record_event
from app.repositories.guard import WorkspaceGuard
from app.repositories.locks import check_lock_id, check_write_lock, describe, get_lock

_PUBLISH_ATTEMPTS = 3
# How long a signed upload URL stays valid: a pending version older than this can no longer receive its state.
UPLOAD_WINDOW_SECONDS = 15 * 60


@dataclass(frozen=True)
class WriteResult:
    """The version now current, and whether this write created it (False for an idempotent retry)."""

    version: StateVersion
    created: bool


def encryption_context(workspace_id: str, version_id: str) -> bytes:
    """Associated data binding a ciphertext to its workspace and version."""
    return f"statesman:state:{workspace_id}:{version_id}".encode()


@dataclass(frozen=True)
class Copy:
    """A JSON copy Terraform sends beside a state, and the ``state_versions`` columns that point at it."""

    kind: str
    key: str
    sha256: str
    kms: str
    size: str | None = None


JSON_STATE = Copy("json-state", "json_state_key", "json_state_sha256", "json_state_kms_key_id", "json_state_size")
JSON_OUTPUTS = Copy("json-outputs", "json_outputs_key", "json_outputs_sha256", "json_outputs_kms_key_id")
COPIES = (JSON_STATE, JSON_OUTPUTS)


def get_current_version(workspace: Workspace) -> StateVersion | None:
    """The workspace's current version, or None when it has no state (no query when the workspace was resolved with
    it and the pointer has not moved since)."""
    if workspace.current_version_id is None:
        return None
    loaded: object = inspect(workspace).attrs.loaded_current_version.loaded_value
    if isinstance(loaded, StateVersion) and loaded.id == workspace.current_version_id:
        return loaded
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


@dataclass(frozen=True)
class Announced:
    """A version whose id was handed out before its bytes arrived, or that arrives with JSON copies (TFC API).

    ``pending``: the row exists with status ``pending`` and is published in place. ``copies``: ``json_*`` columns
    of copies already stored for a new row. ``output_types``: exact output types from Terraform's JSON outputs.
    """

    version_id: str
    pending: bool = False
    copies: dict[str, Any] = field(default_factory=dict)
    output_types: dict[str, Any] = field(default_factory=dict)


def write_state(
    workspace: Workspace,
    body: StateBody,
    actor: str,
    *,
    lock_id: str | None = None,
    force: bool = False,
    announced: Announced | None = None,
) -> WriteResult:
    """Store ``body`` as the workspace's new current version, enforcing the lock and the serial/lineage guard.

    ``force`` (audited) skips the serial and lineage checks, never the lock. ``announced`` names the new version
    when its id was handed out before the bytes arrived (the TFC upload-URL flow). Raises ``LockConflict``,
    ``Conflict`` (guard, or a concurrent write that won) or ``InvalidInput`` (not a state).
    """
    return _write(workspace, body, actor, lock_id, force, announced, None)


@dataclass(frozen=True)
class Imported:
    """A version read from another server's storage: when it was written there and where it was found."""

    created_at: datetime
    source: str


def import_state_version(
    workspace: Workspace, body: StateBody, actor: str, imported: Imported, *, force: bool = False
) -> WriteResult:
    """Store a version of another server's history as the workspace's new current version, keeping its
    ``created_at``; audited as ``state.import`` with its source.

    The lock and the serial/lineage guard apply as in ``write_state`` (``force`` skips the guard, audited as
    ``forced``). A version with the same serial and bytes already in the history is returned with
    ``created=False`` and nothing is written, so an import can be repeated. Raises like ``write_state``.
    """
    summary = body.summary or body.validate()
    existing = find_version_with_content(workspace, summary.serial, body.sha256)
    if existing is not None:
        return WriteResult(existing, created=False)
    return _write(workspace, body, actor, None, force, None, imported)


def find_version_with_content(workspace: Workspace, serial: int, sha256: str) -> StateVersion | None:
    """A finalized version of the workspace with this serial and these bytes (by SHA-256), or None."""
    return db.session.scalar(
        db.select(StateVersion)
        .where(
            StateVersion.workspace_id == workspace.id,
            StateVersion.status == "finalized",
            StateVersion.serial == serial,
            StateVersion.sha256 == sha256,
        )
        .order_by(StateVersion.number.desc())
        .limit(1)
    )


def _write(
    workspace: Workspace,
    body: StateBody,
    actor: str,
    lock_id: str | None,
    force: bool,
    announced: Announced | None,
    imported: Imported | None,
) -> WriteResult:
    summary = body.summary or body.validate()
    action = "state.import" if imported else "state.write"
    check_write_lock(workspace, lock_id)
    current = _committed_current(workspace)
    if _is_retry(current, body, summary):
        assert current is not None
        return WriteResult(current, created=False)
    try:
        _check_guard(current, summary, force)
    except Conflict as refused:
        record_event(action, "conflict", actor, workspace=workspace, serial=summary.serial, reason=refused.message)
        raise
    version_id = announced.version_id if announced else new_id("sv")
    # A pending id is published by whichever of several retried uploads wins: each stores its own object, so a
    # loser deleting its object never removes the winner's.
    suffix = f"-{secrets.token_hex(4)}" if announced and announced.pending else ""
    storage_key = f"{workspace.id}/{version_id}{suffix}"
    kms = drivers().kms
    drivers().storage.put(storage_key, kms.encrypt(body.chunks(), encryption_context(workspace.id, version_id)))
    try:
        version = _publish(
            workspace, body, summary, actor, storage_key, kms.key_id, force, announced, version_id, imported
        )
    except _AlreadyWritten as landed:
        drivers().storage.delete(storage_key)
        return WriteResult(landed.version, created=False)
    except BaseException:
        drivers().storage.delete(storage_key)
        raise
    _apply_retention(workspace)
    metrics.state_write_size.observe(body.size)
    return WriteResult(version, created=True)


def _committed_current(workspace: Workspace) -> StateVersion | None:
    """The current version as committed now: the session may hold an older copy of that very row (the pending
    version an upload request loaded before a concurrent retry of the same upload published it)."""
    if workspace.current_version_id is None:
        return None
    return db.session.get(StateVersion, workspace.current_version_id, populate_existing=True)


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
    storage_key: str,
    key_id: str,
    forced: bool,
    announced: Announced | None,
    version_id: str,
    imported: Imported | None = None,
) -> StateVersion:
    """Flip the current pointer and insert (or finalize) the version row in one transaction.

    The pointer moves first, guarded by ``version_counter``: of writers racing on one workspace exactly one
    moves it, and the others wait for its row lock and then find the counter changed, so they never reach the
    unique version number. A unique violation that happens anyway is the same lost race. A loser re-reads the
    current version: the same bytes are a success, anything else is judged by the guard against the winner.
    """
    columns: dict[str, Any] = {
        "serial": summary.serial,
        "lineage": summary.lineage,
        "md5": body.md5_hex,
        "sha256": body.sha256,
        "size": body.size,
        "storage_key": storage_key,
        "kms_key_id": key_id,
        "outputs": with_output_types(summary.outputs, announced.output_types if announced else {}),
        "resource_count": summary.resource_count,
        "terraform_version": summary.terraform_version,
        "status": "finalized",
    }
    for _ in range(_PUBLISH_ATTEMPTS):
        counter = workspace.version_counter
        try:
            won = _flip_pointer(workspace, counter, version_id) and _store_row(
                workspace, version_id, counter + 1, columns, actor, announced, imported
            )
            if won:
                origin = {"source": imported.source, "created_at": imported.created_at.isoformat()} if imported else {}
                record_event(
                    "state.import" if imported else "state.write",
                    "forced" if forced else "ok",
                    actor,
                    workspace=workspace,
                    commit=False,
                    serial=summary.serial,
                    version_id=version_id,
                    size=body.size,
                    **origin,
                )
                db.session.commit()
        except IntegrityError:
            won = False
        if won:
            db.session.refresh(workspace)
            version = db.session.get(StateVersion, version_id)
            assert version is not None
            return version
        db.session.rollback()
        _lost_race(workspace, body, summary, forced, announced, version_id)
    raise Conflict("the state kept changing while this write was being stored; try again")


def _flip_pointer(workspace: Workspace, counter: int, version_id: str) -> bool:
    flipped = db.session.execute(
        db.update(Workspace)
        .where(Workspace.id == workspace.id, Workspace.version_counter == counter)
        .values(current_version_id=version_id, version_counter=counter + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return bool(flipped == 1)


def _store_row(
    workspace: Workspace,
    version_id: str,
    number: int,
    columns: dict[str, Any],
    actor: str,
    announced: Announced | None,
    imported: Imported | None = None,
) -> bool:
    if announced is not None and announced.pending:
        # Only the state columns: a JSON copy attached concurrently to the same row stays as it is.
        finalized = db.session.execute(
            db.update(StateVersion)
            .where(StateVersion.id == version_id, StateVersion.status == "pending")
            .values(number=number, **columns)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        return bool(finalized == 1)
    copies = announced.copies if announced else {}
    db.session.add(
        StateVersion(
            id=version_id,
            workspace_id=workspace.id,
            number=number,
            created_by=actor,
            created_at=imported.created_at if imported else utcnow(),
            **columns,
            **copies,
        )
    )
    db.session.flush()
    return True


def _lost_race(
    workspace: Workspace,
    body: StateBody,
    summary: StateSummary,
    forced: bool,
    announced: Announced | None,
    version_id: str,
) -> None:
    """After a lost publish: raise ``_AlreadyWritten`` (same bytes landed) or ``Conflict``, or return to retry."""
    fresh = db.session.get(Workspace, workspace.id, populate_existing=True)
    if fresh is None:
        raise NotFound("the workspace was deleted while this write was being stored")
    current = _committed_current(fresh)
    if _is_retry(current, body, summary):
        assert current is not None
        raise _AlreadyWritten(current)
    if announced is not None and announced.pending:
        mine = db.session.get(StateVersion, version_id, populate_existing=True)
        if mine is not None and mine.status == "finalized" and mine.sha256 == body.sha256:
            raise _AlreadyWritten(mine)
        if mine is None or mine.status != "pending":
            raise Conflict(f"state version {version_id} was finalized or discarded by another request meanwhile")
    try:
        _check_guard(current, summary, forced)
    except Conflict as refused:
        assert current is not None
        raise Conflict(
            f"another write won the race: serial {current.serial} (state version {current.id}) was stored while "
            f"this write of serial {summary.serial} was in flight; {refused.message}"
        ) from None


def with_output_types(outputs: dict[str, Any], exact: dict[str, Any]) -> dict[str, Any]:
    """The state's output summary with each type replaced by the exact one Terraform sent, where it sent one."""
    return {
        name: {**spec, "type": exact[name]} if exact.get(name) is not None else spec for name, spec in outputs.items()
    }


class _AlreadyWritten(StatesmanError):
    """A concurrent identical write won the race (the caller's retry already landed)."""

    def __init__(self, version: StateVersion) -> None:
        super().__init__("already written")
        self.version = version


def _apply_retention(workspace: Workspace) -> None:
    """Delete versions beyond ``OPENTACO_MAX_VERSIONS`` (never the current one): rows first, then objects.

    A pending version whose upload URL is still valid is kept: its client may be uploading right now.
    """
    keep = config().max_versions
    if keep <= 0:
        return
    in_flight = db.and_(
        StateVersion.status == "pending", StateVersion.created_at > utcnow() - timedelta(seconds=UPLOAD_WINDOW_SECONDS)
    )
    doomed = list(
        db.session.scalars(
            db.select(StateVersion)
            .where(
                StateVersion.workspace_id == workspace.id,
                StateVersion.id != workspace.current_version_id,
                db.not_(in_flight),
            )
            .order_by(StateVersion.number.desc())
            .offset(keep - 1)
        )
    )
    if not doomed:
        return
    keys = [key for version in doomed for key in object_keys(version)]
    # One statement by id: two writers trimming at once delete the same rows without either failing.
    db.session.execute(
        db.delete(StateVersion)
        .where(StateVersion.id.in_([v.id for v in doomed]))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    for key in keys:
        drivers().storage.delete(key)


def rollback_to(guard: WorkspaceGuard, version: StateVersion, lock_id: str | None = None) -> WriteResult:
    """Make an earlier version current again as a new version with serial = current + 1.

    A rollback is a forced write (an older lineage or fewer resources may come back), so it needs what a forced
    write needs (``write_actions(True)``: ``unit.write`` and ``unit.delete``), whatever the door.
    """
    check_write_permission(guard, force=True)
    workspace, actor = guard.workspace, guard.actor
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


def write_actions(force: bool) -> tuple[str, ...]:
    """What a state write needs: ``unit.write``; overriding the serial/lineage guard (``force``) needs
    ``unit.delete`` too, since a forced write can replace every resource of the state."""
    return (policy.WRITE, policy.DELETE) if force else (policy.WRITE,)


def check_write_permission(guard: WorkspaceGuard, *, force: bool) -> None:
    """Raise ``Forbidden`` unless the caller may write the workspace's state (``write_actions``)."""
    for action in write_actions(force):
        guard.require(action)


def readable_current_version(guard: WorkspaceGuard) -> tuple[StateVersion, bool]:
    """The current version and whether the caller may read all of it; ``NotFound`` without state.

    False means the caller may read the outputs only (``terraform_remote_state`` consumers): they get
    ``outputs_document``, never the resources.
    """
    version = get_current_version(guard.workspace)
    if version is None:
        raise NotFound(f"workspace {guard.workspace.name!r} has no state yet")
    return version, guard.allows(policy.READ)


def delete_workspace(guard: WorkspaceGuard, *, lock_id: str | None = None, safe: bool = False) -> None:
    """Delete the workspace with every version, for a caller with ``unit.delete``.

    Refused (``LockConflict`` with the holder) while the workspace is locked, unless ``lock_id`` is the holder's:
    deleting under a running apply would lose its state. ``safe`` also refuses while the current state still
    manages resources (TFC's safe-delete).
    """
    guard.require(policy.DELETE)
    if lock_id is not None:
        check_lock_id(lock_id)
    workspace = guard.workspace
    holder = get_lock(workspace)
    if holder is not None and holder.lock_id != lock_id:
        raise LockConflict(f"workspace {workspace.name!r} is locked by {describe(holder)}; unlock it first", holder)
    current = get_current_version(workspace)
    if safe and current is not None and current.resource_count > 0:
        raise Conflict(
            f"workspace {workspace.name!r} still manages {current.resource_count} resource(s); destroy "
            "them first, or delete the workspace without safe-delete"
        )
    delete_workspace_state(workspace, guard.actor)


def delete_workspace_state(workspace: Workspace, actor: str) -> None:
    """Delete the workspace with every version (rows first, then objects); ``delete_workspace`` checked the lock."""
    workspace_id = workspace.id
    versions = list(db.session.scalars(db.select(StateVersion).where(StateVersion.workspace_id == workspace_id)))
    keys = [key for version in versions for key in object_keys(version)]
    # configuration archives go with the workspace too (their rows by the foreign key's cascade)
    archives = db.select(ConfigurationVersion.storage_key).where(
        ConfigurationVersion.workspace_id == workspace_id, ConfigurationVersion.storage_key.is_not(None)
    )
    keys += [key for key in db.session.scalars(archives) if key]
    record_event("workspace.delete", "ok", actor, workspace=workspace, commit=False, versions=len(versions))
    db.session.execute(db.delete(StateVersion).where(StateVersion.workspace_id == workspace.id))
    db.session.delete(workspace)
    db.session.commit()
    drivers().locks.release(workspace_id, None)  # the caller held it (or nobody did); it must not outlive the workspace
    for key in keys:
        drivers().storage.delete(key)


def _not_under(key_id: str) -> Any:
    """Finalized versions with the state or a JSON copy encrypted under another key than ``key_id``."""
    return db.and_(
        StateVersion.status == "finalized",
        db.or_(
            StateVersion.kms_key_id != key_id,
            *(
                db.and_(getattr(StateVersion, c.kms) != key_id, getattr(StateVersion, c.key).is_not(None))
                for c in COPIES
            ),
        ),
    )


def versions_needing_rotation(batch: int = 100) -> Iterator[StateVersion]:
    """Every version (all workspaces) with an object not encrypted with the current key, in batches."""
    key_id = drivers().kms.key_id
    last_id = ""
    while True:
        page = list(
            db.session.scalars(
                db.select(StateVersion)
                .where(_not_under(key_id), StateVersion.id > last_id)
                .order_by(StateVersion.id)
                .limit(batch)
            )
        )
        if not page:
            return
        yield from page
        last_id = page[-1].id


def stored_key_ids() -> set[str]:
    """Every key id that a finalized version's state or JSON copy is encrypted under."""
    finalized = StateVersion.status == "finalized"
    found = set(db.session.scalars(db.select(StateVersion.kms_key_id).where(finalized).distinct()))
    for copy in COPIES:
        column = getattr(StateVersion, copy.kms)
        found.update(db.session.scalars(db.select(column).where(finalized, column.is_not(None)).distinct()))
    return found


def count_versions_needing_rotation() -> int:
    """How many versions have an object not encrypted with the current key."""
    key_id = drivers().kms.key_id
    return db.session.scalar(db.select(db.func.count()).select_from(StateVersion).where(_not_under(key_id))) or 0


def reencrypt_version(version: StateVersion) -> None:
    """Re-encrypt one version's objects (state and JSON copies) under the current key: new objects, pointer switch,
    old objects removed.

    Readers keep using the old objects until the row points at the new ones, so rotation runs live.
    """
    active = drivers()
    key_id = active.kms.key_id
    replaced: list[tuple[str, str]] = []  # (old key, new key)
    try:
        if version.kms_key_id != key_id:
            context = encryption_context(version.workspace_id, version.id)
            new_key = f"{version.workspace_id}/{version.id}-{new_id('k')[2:10]}"
            active.storage.put(new_key, active.kms.encrypt(open_version(version), context))
            replaced.append((version.storage_key, new_key))
            version.storage_key, version.kms_key_id = new_key, key_id
        for copy in COPIES:
            old_key = getattr(version, copy.key)
            if old_key is None or getattr(version, copy.kms) == key_id:
                continue
            new_key = copy_storage_key(version.workspace_id, version.id, copy)
            context = copy_context(copy, version.workspace_id, version.id)
            active.storage.put(new_key, active.kms.encrypt(open_copy(version, copy), context))
            replaced.append((old_key, new_key))
            setattr(version, copy.key, new_key)
            setattr(version, copy.kms, key_id)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        for _, new_key in replaced:
            active.storage.delete(new_key)
        raise
    for old_key, _ in replaced:
        active.storage.delete(old_key)


def copy_context(copy: Copy, workspace_id: str, version_id: str) -> bytes:
    """Associated data binding a copy's ciphertext to its kind, workspace and version (never mistaken for a state)."""
    return f"statesman:{copy.kind}:{workspace_id}:{version_id}".encode()


def copy_storage_key(workspace_id: str, version_id: str, copy: Copy) -> str:
    """A fresh object key for a copy: concurrent uploads of one copy never share (or delete) each other's object."""
    return f"{workspace_id}/{version_id}-{copy.kind}-{secrets.token_hex(4)}"


def store_copy(workspace_id: str, version_id: str, copy: Copy, body: StateBody) -> dict[str, Any]:
    """Encrypt and store a copy's bytes; returns the column values that point at the new object."""
    key = copy_storage_key(workspace_id, version_id, copy)
    kms = drivers().kms
    drivers().storage.put(key, kms.encrypt(body.chunks(), copy_context(copy, workspace_id, version_id)))
    columns: dict[str, Any] = {copy.key: key, copy.sha256: body.sha256, copy.kms: kms.key_id}
    if copy.size is not None:
        columns[copy.size] = body.size
    return columns


def open_copy(version: StateVersion, copy: Copy) -> Iterator[bytes]:
    """The plaintext of a version's copy, streamed and verified; ``NotFound`` when it has none."""
    key = getattr(version, copy.key)
    if key is None:
        raise NotFound(f"state version {version.id} has no {copy.kind}")
    try:
        stored = drivers().storage.open(key)
    except ObjectNotFound:
        raise NotFound(f"the {copy.kind} of state version {version.id} has no stored object") from None
    return drivers().kms.decrypt(stored, copy_context(copy, version.workspace_id, version.id))


def object_keys(version: StateVersion) -> list[str]:
    """Every storage object a version row points at (its state and its copies)."""
    return [version.storage_key, *(getattr(version, c.key) for c in COPIES if getattr(version, c.key))]


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
        outputs: Any = next(ijson.items(ChunkReader(open_version(version)), "outputs", use_float=True), {})
    except ijson.JSONError:
        raise StatesmanError(f"stored state version {version.id} is not valid JSON") from None
    return outputs if isinstance(outputs, dict) else {}
