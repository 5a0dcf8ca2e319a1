"""Workspaces (units): one state history each, unique by name within an organization."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from app.errors import Conflict, NotFound
from app.extensions import db
from app.models import Organization, Workspace
from app.repositories.names import check_name

SETTINGS = ("execution_mode", "terraform_version", "auto_apply", "working_directory", "tag_names")


def get_workspace(org: Organization, name: str) -> Workspace | None:
    """The workspace ``name`` of ``org``, or None."""
    return db.session.scalar(db.select(Workspace).where(Workspace.org_id == org.id, Workspace.name == name))


def get_workspace_by_ref(org: Organization, ref: str) -> Workspace | None:
    """The workspace of ``org`` by id or name, or None (ids of other organizations are never found)."""
    return db.session.scalar(
        db.select(Workspace).where(Workspace.org_id == org.id, (Workspace.id == ref) | (Workspace.name == ref))
    )


def require_workspace(org: Organization, ref: str) -> Workspace:
    """Like ``get_workspace_by_ref`` but raises ``NotFound``."""
    workspace = get_workspace_by_ref(org, ref)
    if workspace is None:
        raise NotFound(f"workspace {ref!r} not found in organization {org.name!r}")
    return workspace


def create_workspace(org: Organization, name: str, created_by: str | None = None, **settings: Any) -> Workspace:
    """Create a workspace; raises ``Conflict`` when the name is taken."""
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown workspace settings {sorted(unknown)}")
    workspace = Workspace(org_id=org.id, name=check_name("workspace", name), created_by=created_by, **settings)
    db.session.add(workspace)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"workspace {name!r} already exists in organization {org.name!r}") from None
    return workspace


def ensure_workspace(org: Organization, name: str, created_by: str | None = None) -> tuple[Workspace, bool]:
    """The workspace, created when missing; returns it and whether it was created (safe under races)."""
    existing = get_workspace(org, name)
    if existing:
        return existing, False
    try:
        return create_workspace(org, name, created_by), True
    except Conflict:
        found = get_workspace(org, name)
        assert found is not None
        return found, False


def list_workspaces(org: Organization, prefix: str | None = None, offset: int = 0,
                    limit: int | None = None) -> tuple[list[Workspace], int]:
    """A page of the organization's workspaces by name, and the total count."""
    query = db.select(Workspace).where(Workspace.org_id == org.id)
    if prefix:
        query = query.where(Workspace.name.startswith(prefix, autoescape=True))
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery())) or 0
    query = query.order_by(Workspace.name).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query)), total
