"""The audit log: who changed what, when, and how it ended. Only changes and refusals are recorded, never reads."""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context

from app.extensions import db
from app.models import AuditEvent, Workspace


def record_event(action: str, outcome: str, actor: str, *, org_id: str | None = None,
                 workspace: Workspace | None = None, commit: bool = True, **detail: Any) -> AuditEvent:
    """Add an audit event (committed unless ``commit=False`` joins the caller's transaction)."""
    event = AuditEvent(
        actor=actor,
        org_id=workspace.org_id if workspace else org_id,
        workspace_id=workspace.id if workspace else None,
        workspace_name=workspace.name if workspace else None,
        action=action,
        outcome=outcome,
        detail=detail,
        request_id=g.get("request_id") if has_request_context() else None,
    )
    db.session.add(event)
    if commit:
        db.session.commit()
    return event


def list_events(org_id: str | None = None, workspace_name: str | None = None, limit: int = 100) -> list[AuditEvent]:
    """Newest events first, optionally narrowed to an organization and a workspace."""
    query = db.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if org_id:
        query = query.where(AuditEvent.org_id == org_id)
    if workspace_name:
        query = query.where(AuditEvent.workspace_name == workspace_name)
    return list(db.session.scalars(query))
