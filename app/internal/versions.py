"""State versions of a unit: the history, and restoring one (as a new version with serial = current + 1)."""

from __future__ import annotations

from flask import Response, jsonify

from app.auth.permissions import Action
from app.core.errors import Conflict, NotFound
from app.internal import schemas
from app.internal.door import json_body, open_unit, route
from app.internal.serializers import iso, version_json
from app.models import StateVersion, Workspace
from app.repositories.state_versions import find_versions_created_at, get_version, list_versions, rollback_to


@route("/units/<ref>/versions", ["GET"])
def unit_versions(ref: str) -> Response:
    """Every version, newest first: ``{"unit_id","versions":[...],"count"}``."""
    workspace = open_unit(ref, Action.READ).workspace
    versions, _ = list_versions(workspace)
    return jsonify(
        unit_id=workspace.id,
        versions=[version_json(v, workspace.current_version_id) for v in versions],
        count=len(versions),
    )


@route("/units/<ref>/restore", ["POST"])
def restore_version(ref: str) -> Response:
    """Make the version named by ``version_id`` or ``timestamp`` current again, through the write guards."""
    target = open_unit(ref, Action.WRITE)
    workspace = target.workspace
    body = json_body(schemas.Restore())
    version = _find_version(workspace, body.get("version_id"), body.get("timestamp"))
    result = rollback_to(target, version, lock_id=body.get("lock_id") or None)
    return jsonify(
        unit_id=workspace.id,
        restored_timestamp=iso(version.created_at),
        restored_version_id=version.id,
        version=version_json(result.version, workspace.current_version_id),
        message="Version restored",
    )


def _find_version(workspace: Workspace, version_id: str | None, timestamp: str | None) -> StateVersion:
    if version_id:
        found = get_version(workspace, version_id)
        if found is None:
            raise NotFound(f"version {version_id!r} not found in unit {workspace.name!r}")
        return found
    assert timestamp is not None
    matches = find_versions_created_at(workspace, schemas.parse_timestamp(timestamp, "timestamp"))
    if not matches:
        raise NotFound(
            f"no version of unit {workspace.name!r} has timestamp {timestamp!r}; use a timestamp exactly "
            "as GET .../versions lists it"
        )
    if len(matches) > 1:
        raise Conflict(f"{len(matches)} versions share timestamp {timestamp!r}; restore by version_id")
    return matches[0]
