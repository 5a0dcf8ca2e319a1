"""``actions/lock``, ``actions/unlock`` and ``actions/force-unlock``: 200 with the workspace, conflicts as 409."""

from __future__ import annotations

from typing import Any

from flask import Response

from app.auth.permissions import Action
from app.core.errors import InvalidInput, LockConflict
from app.repositories.locks import force_unlock_workspace, get_lock, lock_workspace, unlock_workspace
from app.repositories.state_uploads import check_no_pending_upload
from app.tfc_api.blueprint import bp
from app.tfc_api.context import caller
from app.tfc_api.documents import render_workspace
from app.tfc_api.jsonapi import attributes_of, document, request_body
from app.tfc_api.locking import describe, is_held_by, new_lock_info
from app.tfc_api.lookup import find_workspace_by_id

MAX_REASON = 1000


def _reason(body: dict[str, Any]) -> str:
    """``{"reason": ...}`` as go-tfe and pytfe send it, or the same inside ``data.attributes``."""
    reason = body.get("reason", attributes_of(body).get("reason", ""))
    if reason is None:
        return ""
    if not isinstance(reason, str):
        raise InvalidInput("reason must be a string")
    return reason[:MAX_REASON]


@bp.route("/workspaces/<workspace_id>/actions/lock", methods=["POST"])
def lock(workspace_id: str) -> Response:
    """Lock for the caller; a locked workspace cannot be locked again, not even by its holder (TFE's rule)."""
    workspace = find_workspace_by_id(workspace_id, Action.LOCK).workspace
    reason = _reason(request_body())
    holder = get_lock(workspace)
    if holder is not None:
        raise LockConflict(f"workspace {workspace.name!r} is already locked by {describe(holder)}", holder)
    principal = caller()
    lock_id, info = new_lock_info(principal, reason)
    lock_workspace(workspace, lock_id, info, principal.subject)  # atomic: a racing locker gets the conflict
    return document(render_workspace(workspace))


@bp.route("/workspaces/<workspace_id>/actions/unlock", methods=["POST"])
def unlock(workspace_id: str) -> Response:
    """Release the caller's lock; unlocked already is fine (retries); someone else's lock is a 409.

    While the newest state version still waits for its upload the lock stays (400, as HCP Terraform answers
    Terraform 1.10+, which retries): releasing it would let another writer in before that state lands.
    """
    workspace = find_workspace_by_id(workspace_id, Action.LOCK).workspace
    principal = caller()
    holder = get_lock(workspace)
    if holder is not None:
        if not is_held_by(holder, principal.subject):
            raise LockConflict(
                f"workspace {workspace.name!r} is locked by {describe(holder)}; only the holder can "
                "unlock it (or use force-unlock)",
                holder,
            )
        check_no_pending_upload(workspace)
        unlock_workspace(workspace, holder.lock_id, principal.subject)
    return document(render_workspace(workspace))


@bp.route("/workspaces/<workspace_id>/actions/force-unlock", methods=["POST"])
def force_unlock(workspace_id: str) -> Response:
    """Clear whatever lock is held (``FORCE_UNLOCK_ENABLED``; 409 when it is off)."""
    workspace = find_workspace_by_id(workspace_id, Action.LOCK).workspace
    force_unlock_workspace(workspace, caller().subject)
    return document(render_workspace(workspace))
