"""State versions announced before their bytes arrive (the TFC upload-URL flow of Terraform 1.6+ and the SDKs).

Creating a version without a body stores a ``pending`` row: the id, serial, lineage and md5 the client declared,
and who declared it. The bytes then arrive at a signed URL and go through the same guarded ``write_state`` as every
other write, published under the id already handed out, so the version becomes ``finalized`` in place. Pending
rows take negative ``number`` values, so they never collide with published versions (numbered 1, 2, ...) and sort
last for retention; listings and key rotation only consider finalized rows.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db
from app.models import StateVersion, Workspace, new_id, utcnow
from app.repositories.state_versions import write_state
from app.statefile import StateBody, StateSummary

PENDING = "pending"
FINALIZED = "finalized"
DISCARDED = "discarded"
_RESERVE_ATTEMPTS = 3


def create_pending_version(
    workspace: Workspace, serial: int, lineage: str | None, md5_hex: str, actor: str
) -> StateVersion:
    """Reserve a version id for bytes that will be uploaded later."""
    for _ in range(_RESERVE_ATTEMPTS):
        version_id = new_id("sv")
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
        )
        db.session.add(version)
        try:
            db.session.commit()
            return version
        except IntegrityError:
            db.session.rollback()
    raise Conflict("could not reserve a state version id; try again")


def check_declared(summary: StateSummary, body: StateBody, serial: int, lineage: str | None, md5_hex: str) -> None:
    """Refuse bytes that are not what the client declared (``InvalidInput``)."""
    if md5_hex and body.md5_hex != md5_hex.lower():
        raise InvalidInput("md5 does not match the state: the state was corrupted in transit")
    if summary.serial != serial:
        raise InvalidInput(f"the state's serial {summary.serial} differs from the declared serial {serial}")
    if lineage and summary.lineage != lineage:
        raise InvalidInput(f"the state's lineage {summary.lineage!r} differs from the declared lineage {lineage!r}")


def finalize_upload(version: StateVersion, body: StateBody, lock_id: str, *, force: bool) -> StateVersion:
    """Store the uploaded bytes as ``version`` through the guarded write; a retried identical upload is a no-op.

    Raises ``Conflict`` for a version that was already finalized with other bytes or discarded, ``InvalidInput``
    when the bytes are not what was declared, and whatever ``write_state`` raises (lock, serial/lineage guard).
    """
    if version.status == FINALIZED:
        if version.sha256 == body.sha256:
            return version
        raise Conflict(f"state version {version.id} was already uploaded with different content")
    if version.status != PENDING:
        raise Conflict(f"state version {version.id} was discarded; create a new one")
    check_declared(body.summary or body.validate(), body, version.serial, version.lineage, version.md5)
    workspace = db.session.get(Workspace, version.workspace_id)
    if workspace is None:
        raise NotFound(f"state version {version.id} not found")
    return _publish_pending(workspace, version, body, lock_id, force)


def _publish_pending(
    workspace: Workspace, version: StateVersion, body: StateBody, lock_id: str, force: bool
) -> StateVersion:
    snapshot = _columns(version)
    db.session.expunge(version)
    # Claim the pending row by deleting it (its id becomes the published version's id): of two uploads racing on
    # the same URL exactly one gets the row.
    claimed = db.session.execute(
        db.delete(StateVersion).where(StateVersion.id == snapshot["id"], StateVersion.status == PENDING)
    ).rowcount  # type: ignore[attr-defined]
    db.session.commit()
    if claimed != 1:
        raise Conflict(f"state version {snapshot['id']} is being uploaded by another request")
    try:
        result = write_state(
            workspace, body, snapshot["created_by"], lock_id=lock_id, force=force, version_id=snapshot["id"]
        )
    except BaseException:
        _restore(snapshot, PENDING)  # the signed URL stays usable for a retry
        raise
    if not result.created:  # the bytes equal the current state: nothing new to publish
        _restore(snapshot, DISCARDED)
    return result.version


def _columns(version: StateVersion) -> dict[str, Any]:
    return {column.key: getattr(version, column.key) for column in StateVersion.__table__.columns}


def _restore(snapshot: dict[str, Any], status: str) -> None:
    try:
        db.session.add(StateVersion(**{**snapshot, "status": status}))
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
