"""State reads, writes and deletion: GET, POST/PUT and DELETE on ``/state/<org>/<workspace>``."""

from __future__ import annotations

from flask import Response, request

from app.auth.access import resolve_workspace
from app.auth.permissions import Action
from app.extensions import config
from app.http_backend.blueprint import bp
from app.http_backend.targets import resolve, resolve_org_of, unit_org
from app.repositories.state_versions import check_write_permission, delete_workspace, write_actions, write_state
from app.web.request_body import receive_state
from app.web.state_responses import current_state_response


@bp.route("/state/<org>/<workspace>", methods=["GET"])
def get_state(org: str, workspace: str) -> Response:
    """The exact bytes last written, or 404 when the workspace has no state."""
    return _read(org, workspace, by_id=False)


@bp.route("/v1/backend/<unit>", methods=["GET"])
def get_unit_state(unit: str) -> Response:
    """OpenTaco compatibility: ``GET`` with the unit by id or name in the caller's organization."""
    return _read(unit_org(), unit, by_id=True)


@bp.route("/state/<org>/<workspace>", methods=["POST", "PUT"])
def post_state(org: str, workspace: str) -> Response:
    """Store a new state version (``?ID=<lock id>`` when locked, ``?force=true`` to override the guard)."""
    return _write(org, workspace, by_id=False)


@bp.route("/v1/backend/<unit>", methods=["POST", "PUT"])
def post_unit_state(unit: str) -> Response:
    """OpenTaco compatibility: write with the unit by id or name."""
    return _write(unit_org(), unit, by_id=True)


@bp.route("/state/<org>/<workspace>", methods=["DELETE"])
def delete_state(org: str, workspace: str) -> Response:
    """Delete the workspace and all its versions; refused while locked, unless ``?ID=`` is the holder's."""
    target = resolve(org, workspace, False, Action.DELETE)
    delete_workspace(target, lock_id=request.args.get("ID") or None)
    return Response(status=200)


def _read(org_ref: str, ref: str, by_id: bool) -> Response:
    return current_state_response(resolve(org_ref, ref, by_id, Action.READ_OUTPUTS))


def _write(org_ref: str, ref: str, by_id: bool) -> Response:
    force = request.args.get("force", "").lower() in ("1", "true")
    # Authorize before reading the body; the workspace is created only once the body proved to be a state.
    access = resolve_org_of(org_ref, ref, by_id, create_missing=True)
    for action in write_actions(force):
        access.require(action, None if by_id else ref)
    with receive_state(config().max_state_size) as body:
        target = resolve_workspace(access, ref, Action.WRITE, by_id=by_id, create_missing=True)
        check_write_permission(target, force=force)
        write_state(target.workspace, body, target.actor, lock_id=request.args.get("ID") or None, force=force)
    return Response(status=200)
