"""LOCK / UNLOCK on ``/state/<org>/<workspace>``, the GitLab-style ``/lock`` routes, and ``/v1/backend/<unit>``."""

from __future__ import annotations

from flask import Response

from app.auth import current_principal
from app.auth.permissions import Action
from app.http_backend.blueprint import bp
from app.http_backend.targets import resolve, unit_org
from app.repositories.locks import (
    MAX_LOCKINFO_BYTES,
    force_unlock_workspace,
    lock_id_from_body,
    parse_lock_info,
    unlock_workspace,
)
from app.repositories.locks import lock_workspace as acquire_lock
from app.web.request_body import read_small_body


@bp.route("/state/<org>/<workspace>", methods=["LOCK"], endpoint="lock")
@bp.route("/state/<org>/<workspace>/lock", methods=["POST", "LOCK"], endpoint="lock")
def lock(org: str, workspace: str) -> Response:
    """Acquire the lock: 200, or 423 with the holder's LockInfo."""
    return _lock(org, workspace, by_id=False)


@bp.route("/v1/backend/<unit>", methods=["LOCK"], endpoint="unit_lock")
def unit_lock(unit: str) -> Response:
    """OpenTaco compatibility: LOCK with the unit by id or name."""
    return _lock(unit_org(), unit, by_id=True)


@bp.route("/state/<org>/<workspace>", methods=["UNLOCK"], endpoint="unlock")
@bp.route("/state/<org>/<workspace>/lock", methods=["DELETE", "UNLOCK"], endpoint="unlock")
def unlock(org: str, workspace: str) -> Response:
    """Release the lock: 200 (also when unlocked); 409 with the holder for another ID; no ID forces."""
    return _unlock(org, workspace, by_id=False)


@bp.route("/v1/backend/<unit>", methods=["UNLOCK"], endpoint="unit_unlock")
def unit_unlock(unit: str) -> Response:
    """OpenTaco compatibility: UNLOCK with the unit by id or name."""
    return _unlock(unit_org(), unit, by_id=True)


def _lock(org_ref: str, ref: str, by_id: bool) -> Response:
    current_principal()  # who is calling comes first: no credentials is a 401 whatever the body
    lock_id, info = parse_lock_info(read_small_body(MAX_LOCKINFO_BYTES))
    target = resolve(org_ref, ref, by_id, Action.LOCK, create_missing=True)
    acquire_lock(target.workspace, lock_id, info, target.actor)
    return Response(status=200)


def _unlock(org_ref: str, ref: str, by_id: bool) -> Response:
    lock_id = lock_id_from_body(read_small_body(MAX_LOCKINFO_BYTES))
    target = resolve(org_ref, ref, by_id, Action.LOCK)
    if lock_id is None:
        # Terraform's force-unlock sends an empty body: the ID typed on its command line never arrives.
        force_unlock_workspace(target.workspace, target.actor)
    else:
        unlock_workspace(target.workspace, lock_id, target.actor)
    return Response(status=200)
