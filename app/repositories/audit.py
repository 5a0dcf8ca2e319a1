"""The audit log: who changed what, when, and how it ended. Only changes and refusals are recorded, never reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.clock import utcnow
from app.core.request_context import current_request_id
from app.extensions import db
from app.models import AuditEvent, Workspace


def record_event(
    action: str,
    outcome: str,
    actor: str,
    *,
    org_id: str | None = None,
    workspace: Workspace | None = None,
    commit: bool = True,
    **detail: Any,
) -> None:
    """Add an audit event (committed unless ``commit=False`` joins the caller's transaction).

    A plain INSERT in the session's transaction, without the unit of work: every change writes one, and the ORM's
    flush of a new object cost more than the statement. Pending objects are not flushed by it, so an integrity
    error of the caller's rows still surfaces at the caller's commit.
    """
    values = {
        "at": utcnow(),
        "actor": actor,
        "org_id": workspace.org_id if workspace else org_id,
        "workspace_id": workspace.id if workspace else None,
        "workspace_name": workspace.name if workspace else None,
        "action": action,
        "outcome": outcome,
        "detail": detail,
        "request_id": current_request_id.get(),
    }
    db.session.connection().execute(_INSERT, values)  # the session's transaction, without autoflush or ORM events
    if commit:
        db.session.commit()


_INSERT = AuditEvent.__table__.insert()


def list_events(org_id: str | None = None, workspace_name: str | None = None, limit: int = 100) -> list[AuditEvent]:
    """Newest events first, optionally narrowed to an organization and a workspace."""
    query = db.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if org_id:
        query = query.where(AuditEvent.org_id == org_id)
    if workspace_name:
        query = query.where(AuditEvent.workspace_name == workspace_name)
    return list(db.session.scalars(query))


def search_events(
    org_id: str,
    *,
    workspace_id: str | None = None,
    workspace_name: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[AuditEvent], int]:
    """A page of the organization's events, newest first, and the total that match.

    ``workspace_id`` and ``workspace_name`` together match either (a unit named by id or name); ``action`` ending
    in ``*`` matches a prefix (``role.*``); ``since`` is inclusive, ``until`` exclusive.
    """
    query = db.select(AuditEvent).where(AuditEvent.org_id == org_id)
    if workspace_id and workspace_name:
        query = query.where((AuditEvent.workspace_id == workspace_id) | (AuditEvent.workspace_name == workspace_name))
    elif workspace_id:
        query = query.where(AuditEvent.workspace_id == workspace_id)
    elif workspace_name:
        query = query.where(AuditEvent.workspace_name == workspace_name)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action and action.endswith("*"):
        query = query.where(AuditEvent.action.startswith(action[:-1], autoescape=True))
    elif action:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery())) or 0
    page = query.order_by(AuditEvent.id.desc()).offset(offset).limit(limit)
    return list(db.session.scalars(page)), total
