"""State versions announced before their bytes arrive (the TFC upload-URL flow of Terraform 1.6+ and the SDKs).

Creating a version without a body stores a ``pending`` row: the id, serial, lineage and md5 the client declared,
and who declared it. Terraform then PUTs the raw state and its JSON copy to two signed URLs at the same time, in
either order, and retries each. The row is never deleted or replaced while that happens, so every request finds it:

- the state goes through the same guarded ``write_state`` as every other write and is published in place: one
  transaction moves the workspace's pointer and turns the row ``finalized`` (or, when the bytes equal the current
  state, ``discarded``); a retry of the same bytes is a success, other bytes to a finalized version a ``Conflict``;
- the JSON copy only sets its own columns of the row, before or after the state is published.

Pending rows take negative ``number`` values, so they never collide with published versions (numbered 1, 2, ...)
and sort last for retention; listings and key rotation only consider finalized rows. A pending version within its
upload window keeps its workspace from being unlocked normally, as HCP Terraform does.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from datetime import timedelta
from typing import Any

import ijson
import orjson
from sqlalchemy.exc import IntegrityError

from app.core.chunks import ChunkReader
from app.core.clock import utcnow
from app.core.errors import Conflict, InvalidInput, NotFound, UploadPending
from app.core.ids import new_id
from app.core.statefile import SPOOL_IN_MEMORY, StateBody, StateSummary
from app.extensions import db, drivers
from app.models import StateVersion, Workspace
from app.repositories.state_versions import (
    COPIES,
    JSON_OUTPUTS,
    JSON_STATE,
    UPLOAD_WINDOW_SECONDS,
    Announced,
    Copy,
    WriteResult,
    open_copy,
    store_copy,
    write_state,
)

PENDING = "pending"
FINALIZED = "finalized"
DISCARDED = "discarded"
_RESERVE_ATTEMPTS = 3


def decode_copy(encoded: str | None, what: str) -> bytes | None:
    """The bytes of a base64 ``json-state`` / ``json-state-outputs`` attribute (None when absent or empty)."""
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{what} is not valid base64") from None


def create_pending_version(
    workspace: Workspace,
    serial: int,
    lineage: str | None,
    md5_hex: str,
    actor: str,
    *,
    json_state: bytes | None = None,
    json_outputs: bytes | None = None,
) -> StateVersion:
    """Reserve a version id for bytes that will be uploaded later, keeping the JSON copies sent with it."""
    for _ in range(_RESERVE_ATTEMPTS):
        version_id = new_id("sv")
        copies = _store_copies(workspace.id, version_id, json_state, json_outputs)
        version = StateVersion(
            id=version_id,
            workspace_id=workspace.id,
            number=-1 - secrets.randbelow(2**31 - 2),
            serial=serial,
            lineage=lineage or "",
            md5=md5_hex.lower(),
            sha256="",
            size=0,
            storage_key=f"{workspace.id}/{version_id}",
            kms_key_id="",
            outputs={},
            resource_count=0,
            status=PENDING,
            created_by=actor,
            created_at=utcnow(),
            **copies,
        )
        db.session.add(version)
        try:
            db.session.commit()
            return version
        except IntegrityError:
            db.session.rollback()
            _delete_objects(copies)
        except BaseException:
            db.session.rollback()
            _delete_objects(copies)
            raise
    raise Conflict("could not reserve a state version id; try again")


def create_version(
    workspace: Workspace,
    body: StateBody,
    actor: str,
    lock_id: str,
    *,
    force: bool,
    json_state: bytes | None = None,
    json_outputs: bytes | None = None,
) -> WriteResult:
    """Write an inline state (the create call carries the bytes) together with the JSON copies sent beside it."""
    version_id = new_id("sv")
    copies = _store_copies(workspace.id, version_id, json_state, json_outputs)
    try:
        announced = Announced(version_id, copies=copies, output_types=_output_types(json_outputs))
        result = write_state(workspace, body, actor, lock_id=lock_id, force=force, announced=announced)
    except BaseException:
        _delete_objects(copies)
        raise
    if not result.created:  # the same bytes were already current: the copies belong to no row
        _delete_objects(copies)
    return result


def check_declared(summary: StateSummary, body: StateBody, serial: int, lineage: str | None, md5_hex: str) -> None:
    """Refuse bytes that are not what the client declared (``InvalidInput``)."""
    if md5_hex and body.md5_hex != md5_hex.lower():
        raise InvalidInput("md5 does not match the state: the state was corrupted in transit")
    if summary.serial != serial:
        raise InvalidInput(f"the state's serial {summary.serial} differs from the declared serial {serial}")
    if lineage and summary.lineage != lineage:
        raise InvalidInput(f"the state's lineage {summary.lineage!r} differs from the declared lineage {lineage!r}")


def finalize_upload(version: StateVersion, body: StateBody, lock_id: str, *, force: bool) -> StateVersion:
    """Publish the uploaded bytes as ``version`` through the guarded write; a retried identical upload is a no-op.

    Raises ``Conflict`` for a version already finalized (or discarded) with other bytes, ``InvalidInput`` when
    the bytes are not what was declared, and whatever ``write_state`` raises (lock, serial/lineage guard).
    """
    if version.status in (FINALIZED, DISCARDED):
        if version.sha256 == body.sha256:
            return version
        raise Conflict(
            f"state version {version.id} was already uploaded with different content; "
            "a state version is immutable: create a new one"
        )
    if version.status != PENDING:
        raise Conflict(f"state version {version.id} is {version.status}; create a new one")
    summary = body.summary or body.validate()
    check_declared(summary, body, version.serial, version.lineage, version.md5)
    workspace = db.session.get(Workspace, version.workspace_id)
    if workspace is None:
        raise NotFound(f"state version {version.id} not found")
    announced = Announced(version.id, pending=True, output_types=_stored_output_types(version))
    result = write_state(workspace, body, version.created_by or "", lock_id=lock_id, force=force, announced=announced)
    if not result.created and result.version.id != version.id:
        # The bytes equal the current state (a client retrying a write that already landed): nothing to publish.
        # Recording the digest lets a retry of this very upload succeed again.
        db.session.execute(
            db.update(StateVersion)
            .where(StateVersion.id == version.id, StateVersion.status == PENDING)
            .values(status=DISCARDED, sha256=body.sha256, size=body.size)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return result.version


def attach_json_state(version: StateVersion, body: StateBody) -> None:
    """Keep the JSON copy of a version's state, whether it arrives before or after the state itself.

    The same bytes again are a no-op; other bytes once a copy is attached are a ``Conflict`` (versions are
    immutable); ``InvalidInput`` when the body is not a JSON object.
    """
    _check_same_copy(version, JSON_STATE, body.sha256)
    if getattr(version, JSON_STATE.key) is not None:
        return
    check_json_object(body, "the JSON state")
    columns = store_copy(version.workspace_id, version.id, JSON_STATE, body)
    try:
        attached = db.session.execute(
            db.update(StateVersion)
            .where(StateVersion.id == version.id, StateVersion.json_state_key.is_(None))
            .values(**columns)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        db.session.commit()
    except BaseException:
        db.session.rollback()
        _delete_objects(columns)
        raise
    if attached == 1:
        return
    _delete_objects(columns)  # a concurrent upload attached its copy first
    current = db.session.get(StateVersion, version.id, populate_existing=True)
    if current is None:
        raise NotFound(f"state version {version.id} not found")
    _check_same_copy(current, JSON_STATE, body.sha256)


def get_pending_upload(workspace: Workspace) -> StateVersion | None:
    """The workspace's newest version if it still waits for its state bytes within its upload window, else None."""
    newest = db.session.scalars(
        db.select(StateVersion)
        .where(StateVersion.workspace_id == workspace.id)
        .order_by(StateVersion.created_at.desc(), StateVersion.number.desc())
        .limit(1)
    ).first()
    if newest is None or newest.status != PENDING:
        return None
    if newest.created_at <= utcnow() - timedelta(seconds=UPLOAD_WINDOW_SECONDS):
        return None  # its upload URL has expired: nobody can finish it any more
    return newest


def check_no_pending_upload(workspace: Workspace) -> None:
    """Raise ``UploadPending`` while the workspace's newest version still waits for its state bytes."""
    pending = get_pending_upload(workspace)
    if pending is not None:
        # go-tfe recognises exactly this wording (ErrWorkspaceLockedStateVersionStillPending); Terraform 1.10+
        # then retries the unlock instead of failing the run.
        raise UploadPending(
            f"workspace {workspace.name!r} cannot be unlocked yet: its latest state version is still pending "
            f"({pending.id} has not received its state); upload it and retry, or force-unlock the workspace"
        )


def check_json_object(body: StateBody, what: str) -> None:
    """Refuse a body that is not one well-formed JSON object (``InvalidInput``); large bodies parse as a stream."""
    try:
        if body.size <= SPOOL_IN_MEMORY:
            is_object = isinstance(orjson.loads(body.read()), dict)
        else:
            events = ijson.parse(ChunkReader(body.chunks()))
            is_object = next(events, (None, None, None))[1] == "start_map"
            for _ in events:
                pass
    except (orjson.JSONDecodeError, ijson.JSONError):
        raise InvalidInput(f"{what} is not valid JSON") from None
    if not is_object:
        raise InvalidInput(f"{what} must be a JSON object")


def _check_same_copy(version: StateVersion, copy: Copy, sha256: str) -> None:
    attached = getattr(version, copy.sha256)
    if attached is not None and attached != sha256:
        raise Conflict(
            f"state version {version.id} already has a {copy.kind} with different content; "
            "a state version is immutable: create a new one"
        )


def _store_copies(
    workspace_id: str, version_id: str, json_state: bytes | None, json_outputs: bytes | None
) -> dict[str, Any]:
    """Check and store the JSON copies sent inline; returns their columns (nothing is left behind on a refusal)."""
    if json_outputs is not None:
        _output_types(json_outputs)  # refuses anything that is not Terraform's outputs object
    columns: dict[str, Any] = {}
    try:
        for copy, data in ((JSON_STATE, json_state), (JSON_OUTPUTS, json_outputs)):
            if data is None:
                continue
            with StateBody.from_bytes(data, len(data)) as document:
                if copy is JSON_STATE:
                    check_json_object(document, "json-state")
                columns.update(store_copy(workspace_id, version_id, copy, document))
    except BaseException:
        _delete_objects(columns)
        raise
    return columns


def _output_types(json_outputs: bytes | None) -> dict[str, Any]:
    """``{name: type}`` from Terraform's JSON outputs (``{"name": {"sensitive","value","type"}}``)."""
    if json_outputs is None:
        return {}
    try:
        document = json.loads(json_outputs)
    except ValueError:
        raise InvalidInput("json-state-outputs is not valid JSON") from None
    if document is None:  # Terraform sends "null" for a state without outputs
        return {}
    if not isinstance(document, dict) or not all(isinstance(spec, dict) for spec in document.values()):
        raise InvalidInput("json-state-outputs must be a JSON object of outputs")
    return {name: spec["type"] for name, spec in document.items() if spec.get("type") is not None}


def _stored_output_types(version: StateVersion) -> dict[str, Any]:
    if version.json_outputs_key is None:
        return {}
    return _output_types(b"".join(open_copy(version, JSON_OUTPUTS)))


def _delete_objects(columns: dict[str, Any]) -> None:
    for copy in COPIES:
        key = columns.get(copy.key)
        if key:
            drivers().storage.delete(key)
