"""State reads, writes and deletion: GET, POST/PUT and DELETE on ``/state/<org>/<workspace>``."""

from __future__ import annotations

from flask import Response, request

from app.auth import current_principal
from app.auth.access import default_org_ref, open_org, open_workspace
from app.auth.permissions import Action, authorize, is_allowed
from app.core.errors import NotFound
from app.extensions import config
from app.http_backend import bp
from app.models import Organization, Workspace
from app.repositories.locks import check_write_lock
from app.repositories.names import check_name
from app.repositories.state_versions import (
    delete_workspace_state,
    get_current_version,
    write_state,
)
from app.web.request_body import receive_state
from app.web.state_responses import outputs_state_response, state_response


def unit_org() -> str:
    """The organization of a ``/v1/backend/<unit>`` request: ``?org=`` or the token's."""
    return default_org_ref(current_principal(), request.args.get("org"))


def resolve(
    org_ref: str, ref: str, by_id: bool, action: str, *, create_missing: bool = False
) -> tuple[Organization, Workspace]:
    """The organization and workspace a request names, with ``action`` authorized on the workspace."""
    principal = current_principal()
    if not by_id:
        check_name("organization", org_ref)
        check_name("workspace", ref)
    org = open_org(principal, org_ref, action, None if by_id else ref, create_missing=create_missing)
    workspace = open_workspace(principal, org, ref, by_id=by_id, create_missing=create_missing)
    if by_id:
        authorize(principal, org, action, workspace.name)
    return org, workspace


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
    """Delete the workspace and all its versions; refused while someone else holds the lock."""
    _, found = resolve(org, workspace, False, Action.DELETE)
    check_write_lock(found, request.args.get("ID") or None)
    delete_workspace_state(found, current_principal().subject)
    return Response(status=200)


def _read(org_ref: str, ref: str, by_id: bool) -> Response:
    org, workspace = resolve(org_ref, ref, by_id, Action.READ_OUTPUTS)
    version = get_current_version(workspace)
    if version is None:
        raise NotFound(f"workspace {workspace.name!r} has no state yet")
    if not is_allowed(current_principal(), org, Action.READ, workspace.name):
        # Outputs-only callers (terraform_remote_state consumers) get the outputs in a state without resources.
        return outputs_state_response(version)
    return state_response(version)


def _write(org_ref: str, ref: str, by_id: bool) -> Response:
    force = request.args.get("force", "").lower() in ("1", "true")
    action = Action.DELETE if force else Action.WRITE
    principal = current_principal()
    if not by_id:
        check_name("organization", org_ref)
        check_name("workspace", ref)
    # Authorize before reading the body; create the workspace only once the body proved to be a state.
    org = open_org(principal, org_ref, action, None if by_id else ref, create_missing=True)
    with receive_state(config().max_state_size) as body:
        workspace = open_workspace(principal, org, ref, by_id=by_id, create_missing=True)
        authorize(principal, org, Action.WRITE, workspace.name)
        authorize(principal, org, action, workspace.name)
        write_state(workspace, body, principal.subject, lock_id=request.args.get("ID") or None, force=force)
    return Response(status=200)
