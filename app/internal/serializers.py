"""The JSON shapes of the management API (field names are the web UI's contract: keep them)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.core.locks import HeldLock
from app.models import AuditEvent, Organization, Permission, Role, StateVersion, User, Workspace


def iso(moment: datetime | None) -> str | None:
    """Naive UTC as RFC 3339 with microseconds, e.g. ``2026-01-31T12:00:00.123456Z`` (always 6 digits)."""
    return moment.isoformat(timespec="microseconds") + "Z" if moment is not None else None


def org_json(org: Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "display_name": org.display_name,
        "external_org_id": org.external_org_id,
        "created_by": org.created_by,
        "created_at": iso(org.created_at),
        "updated_at": iso(org.updated_at),
    }


def user_json(user: User, roles: list[Role] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": user.subject,
        "email": user.email,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }
    if roles is not None:
        body["roles"] = [role.name for role in roles]
        body["role_ids"] = [role.id for role in roles]
    return body


def lock_json(held: HeldLock) -> dict[str, Any]:
    """``{"id","who","version","created"}`` from the stored LockInfo (whichever API took the lock)."""
    try:
        info = json.loads(held.info)
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    return {
        "id": held.lock_id,
        "who": info.get("Who", ""),
        "version": info.get("Version", ""),
        "created": info.get("Created") or iso(held.created_at),
    }


def unit_json(workspace: Workspace, version: StateVersion | None, held: HeldLock | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": workspace.id,
        "name": workspace.name,
        "absolute_name": f"org-{workspace.organization.name}/{workspace.name}",
        "size": version.size if version is not None else 0,
        "updated": iso(workspace.updated_at),
        "locked": held is not None,
        "tfe_auto_apply": workspace.auto_apply,
        "tfe_terraform_version": workspace.terraform_version,
        "tfe_engine": workspace.engine,
        "tfe_working_directory": workspace.working_directory,
        "tfe_execution_mode": workspace.execution_mode,
    }
    if held is not None:
        body["lock_info"] = lock_json(held)
    return body


def version_json(version: StateVersion, current_version_id: str | None) -> dict[str, Any]:
    """Exactly ``{"id","timestamp","hash","size","serial","isLatest"}``; ``timestamp`` is echoed back to restore."""
    return {
        "id": version.id,
        "timestamp": iso(version.created_at),
        "hash": version.sha256,
        "size": version.size,
        "serial": version.serial,
        "isLatest": version.id == current_version_id,
    }


def permission_json(permission: Permission) -> dict[str, Any]:
    return {
        "id": permission.id,
        "name": permission.name,
        "description": permission.description,
        "rules": permission.rules,
        "builtin": permission.builtin,
        "org_id": permission.org_id,
        "created_by": permission.created_by,
        "created_at": iso(permission.created_at),
    }


def role_json(role: Role, permissions: list[Permission]) -> dict[str, Any]:
    """``permissions`` lists names (unique per organization, and what rules and the UI show)."""
    return {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "permissions": [p.name for p in permissions],
        "permission_ids": [p.id for p in permissions],
        "builtin": role.builtin,
        "org_id": role.org_id,
        "created_by": role.created_by,
        "created_at": iso(role.created_at),
    }


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": iso(event.at),
        "actor": event.actor,
        "action": event.action,
        "outcome": event.outcome,
        "org_id": event.org_id,
        "unit_id": event.workspace_id,
        "unit_name": event.workspace_name,
        "detail": event.detail,
        "request_id": event.request_id,
    }
