"""Unit locks from the UI: lock with or without a body, unlock by id or (without one) force-unlock."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from flask import Response, jsonify

from app.auth.permissions import Action
from app.internal import schemas
from app.internal.door import caller, json_body, open_unit, route
from app.internal.serializers import lock_json
from app.repositories.locks import force_unlock_workspace, unlock_workspace
from app.repositories.locks import lock_workspace as acquire_lock


@route("/units/<ref>/lock", ["POST"])
def lock_unit(ref: str) -> Response:
    """Take the lock: ``{"id","who","version"}`` or no body (an id is generated, who is the caller's email).

    The lock is stored as Terraform LockInfo, so ``terraform`` shows who holds it; 409 with the holder's lock.
    """
    principal = caller().principal
    workspace = open_unit(ref, Action.LOCK).workspace
    body = json_body(schemas.LockRequest(), optional=True)
    lock_id = body.get("id") or str(uuid.uuid4())
    info = json.dumps(
        {
            "ID": lock_id,
            "Operation": "OperationTypeManual",
            "Info": "locked through the Statesman management API",
            "Who": body.get("who") or principal.email or principal.subject,
            "Version": body.get("version") or "statesman",
            "Created": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "Path": "",
        }
    )
    held = acquire_lock(workspace, lock_id, info, principal.subject)
    return jsonify(lock_json(held))


@route("/units/<ref>/unlock", ["DELETE", "POST"])
def unlock_unit(ref: str) -> Response:
    """Release the lock ``{"id"}``; without an id, clear whatever lock is held (force-unlock, audited)."""
    principal = caller().principal
    workspace = open_unit(ref, Action.LOCK).workspace
    body = json_body(schemas.UnlockRequest(), optional=True)
    lock_id = body.get("id") or None
    if lock_id is None:
        released = force_unlock_workspace(workspace, principal.subject)
    else:
        released = unlock_workspace(workspace, lock_id, principal.subject)
    return jsonify(
        status="unlocked" if released else "not_locked",
        unit_id=workspace.id,
        lock=lock_json(released) if released else None,
    )
