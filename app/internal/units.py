"""Units (= workspaces): create, list, show, change settings, delete, download, upload, dependency status."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from app.auth.permissions import Action, allowed_names, authorize, is_allowed
from app.core.errors import LockConflict, NotFound
from app.extensions import config
from app.internal import schemas
from app.internal.door import caller, json_body, query, requested_page, require_org, route
from app.internal.serializers import iso, unit_json, version_json
from app.models import Organization, Workspace
from app.repositories import workspaces
from app.repositories.audit import record_event
from app.repositories.locks import get_lock
from app.repositories.names import check_name, is_valid_name
from app.repositories.state_versions import (
    delete_workspace_state,
    get_current_version,
    get_versions_by_ids,
    write_state,
)
from app.web.request_body import receive_state
from app.web.state_responses import outputs_state_response, state_response

_SETTINGS = {
    "tfe_auto_apply": "auto_apply",
    "tfe_execution_mode": "execution_mode",
    "tfe_terraform_version": "terraform_version",
    "tfe_engine": "engine",
    "tfe_working_directory": "working_directory",
}


def open_unit(ref: str, action: str) -> tuple[Organization, Workspace]:
    """The caller's organization and the unit ``ref`` (id or name) in it, with ``action`` authorized on its name.

    A name the caller may not act on gets the same 403 whether or not such a unit exists.
    """
    principal = caller().principal
    org = require_org()
    authorize(principal, org, action, None)
    workspace = workspaces.get_workspace_by_ref(org, ref)
    if workspace is None:
        if is_valid_name(ref):
            authorize(principal, org, action, ref)
        raise NotFound(f"unit {ref!r} not found in organization {org.name!r}")
    authorize(principal, org, action, workspace.name)
    return org, workspace


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    return {column: body[field] for field, column in _SETTINGS.items() if body.get(field) is not None}


@route("/units", ["POST"])
def create_unit() -> tuple[Response, int]:
    """Create a unit (``unit.write`` on its name); 409 when the name exists."""
    principal = caller().principal
    org = require_org()
    body = json_body(schemas.UnitCreate())
    name = check_name("workspace", body["name"].strip())
    authorize(principal, org, Action.WRITE, name)
    workspace = workspaces.create_workspace(org, name, principal.subject, **_settings(body))
    record_event("workspace.create", "ok", principal.subject, workspace=workspace)
    return jsonify(id=workspace.id, name=workspace.name, created=iso(workspace.created_at)), 201


@route("/units", ["GET"])
def list_units() -> Response:
    """The units the caller may read (``unit.read_outputs``), by name, optionally by name prefix; paginated."""
    principal = caller().principal
    org = require_org()
    params = query(schemas.UnitList())
    page = requested_page()
    found, _ = workspaces.list_workspaces(org, params.get("prefix") or None)
    readable = set(allowed_names(principal, org, Action.READ_OUTPUTS, [w.name for w in found]))
    visible = [w for w in found if w.name in readable]
    shown = visible[page.offset : page.offset + page.size]
    versions = get_versions_by_ids([w.current_version_id for w in shown if w.current_version_id])
    units = [unit_json(w, versions.get(w.current_version_id or ""), get_lock(w)) for w in shown]
    return jsonify(units=units, count=len(units), total=len(visible), page=page.number, page_size=page.size)


@route("/units/<ref>", ["GET"])
def show_unit(ref: str) -> Response:
    """One unit by id or name."""
    _, workspace = open_unit(ref, Action.READ_OUTPUTS)
    return jsonify(unit_json(workspace, get_current_version(workspace), get_lock(workspace)))


@route("/units/<ref>", ["PATCH"])
def update_unit(ref: str) -> Response:
    """Change the ``tfe_*`` settings that are present (absent or null fields stay as they are)."""
    principal = caller().principal
    _, workspace = open_unit(ref, Action.WRITE)
    body = json_body(schemas.UnitSettings(), optional=True)
    workspaces.update_workspace(workspace, principal.subject, **_settings(body))
    return jsonify(unit_json(workspace, get_current_version(workspace), get_lock(workspace)))


@route("/units/<ref>", ["DELETE"])
def delete_unit(ref: str) -> Response:
    """Delete the unit with its state, versions and lock row; refused (409 with the holder) while locked."""
    principal = caller().principal
    _, workspace = open_unit(ref, Action.DELETE)
    holder = get_lock(workspace)
    if holder is not None:
        raise LockConflict(f"unit {workspace.name!r} is locked by {holder.lock_id!r}; unlock it first", holder)
    unit_id, name = workspace.id, workspace.name
    delete_workspace_state(workspace, principal.subject)
    return jsonify(status="deleted", id=unit_id, name=name)


@route("/units/<ref>/download", ["GET"])
def download_unit(ref: str) -> Response:
    """The current state's exact bytes (outputs-only callers: the outputs in a state without resources)."""
    principal = caller().principal
    org, workspace = open_unit(ref, Action.READ_OUTPUTS)
    version = get_current_version(workspace)
    if version is None:
        raise NotFound(f"unit {workspace.name!r} has no state yet")
    if not is_allowed(principal, org, Action.READ, workspace.name):
        return outputs_state_response(version)
    return state_response(version)


@route("/units/<ref>/upload", ["POST"])
def upload_unit(ref: str) -> Response:
    """Store the body as a new state version through the http backend's guards (``?if_locked_by=<lock id>``)."""
    principal = caller().principal
    force = request.args.get("force", "").lower() in ("1", "true")
    org, workspace = open_unit(ref, Action.WRITE)
    if force:
        authorize(principal, org, Action.DELETE, workspace.name)
    with receive_state(config().max_state_size) as body:
        result = write_state(
            workspace, body, principal.subject, lock_id=request.args.get("if_locked_by") or None, force=force
        )
    return jsonify(
        message="Unit uploaded successfully",
        status="stored" if result.created else "unchanged",
        unit_id=workspace.id,
        version=version_json(result.version, workspace.current_version_id),
    )


@route("/units/<ref>/status", ["GET"])
def unit_status(ref: str) -> Response:
    """Dependency status: green (no dependency graph is kept, so nothing is ever pending)."""
    _, workspace = open_unit(ref, Action.READ_OUTPUTS)
    return jsonify(
        unit_id=workspace.id,
        status="green",
        incoming=[],
        summary={"incoming_ok": 0, "incoming_pending": 0, "incoming_unknown": 0},
    )
