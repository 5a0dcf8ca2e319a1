"""Units (= workspaces): create, list, show, change settings, delete, download, upload, dependency status."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from app.auth.permissions import Action
from app.extensions import config
from app.internal import schemas
from app.internal.door import json_body, open_unit, query, requested_page, require_access, route
from app.internal.serializers import iso, unit_json, version_json
from app.repositories import workspaces
from app.repositories.locks import get_lock
from app.repositories.names import check_name
from app.repositories.state_versions import (
    check_write_permission,
    delete_workspace,
    get_current_version,
    get_versions_by_ids,
    write_state,
)
from app.web.request_body import receive_state
from app.web.state_responses import current_state_response

_SETTINGS = {
    "tfe_auto_apply": "auto_apply",
    "tfe_execution_mode": "execution_mode",
    "tfe_terraform_version": "terraform_version",
    "tfe_engine": "engine",
    "tfe_working_directory": "working_directory",
}


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    return {column: body[field] for field, column in _SETTINGS.items() if body.get(field) is not None}


@route("/units", ["POST"])
def create_unit() -> tuple[Response, int]:
    """Create a unit (``unit.write`` on its name); 409 when the name exists."""
    access = require_access()
    body = json_body(schemas.UnitCreate())
    name = check_name("workspace", body["name"].strip())
    access.require(Action.WRITE, name)
    workspace = workspaces.create_workspace(access.org, name, access.actor, **_settings(body))
    return jsonify(id=workspace.id, name=workspace.name, created=iso(workspace.created_at)), 201


@route("/units", ["GET"])
def list_units() -> Response:
    """The units the caller may read (``unit.read_outputs``), by name, optionally by name prefix; paginated."""
    access = require_access()
    params = query(schemas.UnitList())
    page = requested_page()
    found, _ = workspaces.list_workspaces(access.org, params.get("prefix") or None)
    readable = set(access.allowed_names(Action.READ_OUTPUTS, [w.name for w in found]))
    visible = [w for w in found if w.name in readable]
    shown = visible[page.offset : page.offset + page.size]
    versions = get_versions_by_ids([w.current_version_id for w in shown if w.current_version_id])
    units = [unit_json(w, versions.get(w.current_version_id or ""), get_lock(w)) for w in shown]
    return jsonify(units=units, count=len(units), total=len(visible), page=page.number, page_size=page.size)


@route("/units/<ref>", ["GET"])
def show_unit(ref: str) -> Response:
    """One unit by id or name."""
    workspace = open_unit(ref, Action.READ_OUTPUTS).workspace
    return jsonify(unit_json(workspace, get_current_version(workspace), get_lock(workspace)))


@route("/units/<ref>", ["PATCH"])
def update_unit(ref: str) -> Response:
    """Change the ``tfe_*`` settings that are present (absent or null fields stay as they are)."""
    target = open_unit(ref, Action.WRITE)
    workspace = target.workspace
    body = json_body(schemas.UnitSettings(), optional=True)
    workspaces.update_workspace(workspace, target.actor, **_settings(body))
    return jsonify(unit_json(workspace, get_current_version(workspace), get_lock(workspace)))


@route("/units/<ref>", ["DELETE"])
def delete_unit(ref: str) -> Response:
    """Delete the unit with its state, versions and lock row; refused (409 with the holder) while locked, unless
    ``?if_locked_by=`` is the holder's lock id."""
    target = open_unit(ref, Action.DELETE)
    unit_id, name = target.workspace.id, target.workspace.name
    delete_workspace(target, lock_id=request.args.get("if_locked_by") or None)
    return jsonify(status="deleted", id=unit_id, name=name)


@route("/units/<ref>/download", ["GET"])
def download_unit(ref: str) -> Response:
    """The current state's exact bytes (outputs-only callers: the outputs in a state without resources)."""
    return current_state_response(open_unit(ref, Action.READ_OUTPUTS))


@route("/units/<ref>/upload", ["POST"])
def upload_unit(ref: str) -> Response:
    """Store the body as a new state version through the http backend's guards (``?if_locked_by=<lock id>``)."""
    force = request.args.get("force", "").lower() in ("1", "true")
    target = open_unit(ref, Action.WRITE)
    workspace = target.workspace
    check_write_permission(target, force=force)
    with receive_state(config().max_state_size) as body:
        result = write_state(
            workspace, body, target.actor, lock_id=request.args.get("if_locked_by") or None, force=force
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
    workspace = open_unit(ref, Action.READ_OUTPUTS).workspace
    return jsonify(
        unit_id=workspace.id,
        status="green",
        incoming=[],
        summary={"incoming_ok": 0, "incoming_pending": 0, "incoming_unknown": 0},
    )
