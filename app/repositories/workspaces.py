"""Workspaces (units): one state history each, unique by name within an organization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, lazyload, selectinload

from app.core.errors import Conflict, NotFound
from app.extensions import db
from app.models import Organization, Workspace
from app.repositories.audit import record_event
from app.repositories.names import check_name, looks_like_id
from app.repositories.tags import replace_tags, tagged

SETTINGS = ("execution_mode", "agent_pool_id", "terraform_version", "auto_apply", "working_directory", "engine")
Tags = Mapping[str, str]
Bindings = tuple[tuple[str, str], ...]


def get_workspace(org: Organization, name: str) -> Workspace | None:
    """The workspace ``name`` of ``org``, or None."""
    return db.session.scalar(_BY_NAME, {"org_id": org.id, "ref": name})


def _resolving(match: Any) -> Any:
    """The query of the workspace ``match`` selects, its current version loaded in the same round trip.

    Every request that names a workspace comes through here, and most then read its current version: one round
    trip instead of two. The organization is not joined again: the request resolved it first, and a many-to-one
    load finds it in the session. Built once with bound parameters: building and keying the statement on every
    request cost more than running it.
    """
    return (
        db.select(Workspace)
        .outerjoin(Workspace.loaded_current_version)
        .options(contains_eager(Workspace.loaded_current_version), lazyload(Workspace.organization))
        .where(Workspace.org_id == db.bindparam("org_id"), match)
    )


_BY_NAME = _resolving(Workspace.name == db.bindparam("ref"))
_BY_ID = _resolving(Workspace.id == db.bindparam("ref"))


def get_workspace_by_ref(org: Organization, ref: str) -> Workspace | None:
    """The workspace of ``org`` by id (when ``ref`` has the shape of a workspace id) or else by name, or None.

    Never "id or name, whichever matches": names cannot take the shape of an id (``check_name``), and an id-shaped
    reference is only looked up as an id, so nobody can create a workspace that captures requests made by id.
    """
    query = _BY_ID if looks_like_id(ref, "ws") else _BY_NAME
    return db.session.scalar(query, {"org_id": org.id, "ref": ref})


def require_workspace(org: Organization, ref: str) -> Workspace:
    """Like ``get_workspace_by_ref`` but raises ``NotFound``."""
    workspace = get_workspace_by_ref(org, ref)
    if workspace is None:
        raise NotFound(f"workspace {ref!r} not found in organization {org.name!r}")
    return workspace


def create_workspace(
    org: Organization, name: str, created_by: str | None = None, *, tags: Tags | None = None, **settings: Any
) -> Workspace:
    """Create a workspace (with ``tags``, in the same transaction, audited as ``workspace.create``); raises
    ``Conflict`` when the name is taken."""
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown workspace settings {sorted(unknown)}")
    workspace = Workspace(org_id=org.id, name=check_name("workspace", name), created_by=created_by, **settings)
    if tags:
        replace_tags(workspace, tags)
    db.session.add(workspace)
    try:
        db.session.flush()
        record_event("workspace.create", "ok", created_by or "", workspace=workspace, commit=False)
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


def list_workspaces(
    org: Organization, prefix: str | None = None, offset: int = 0, limit: int | None = None
) -> tuple[list[Workspace], int]:
    """A page of the organization's workspaces by name, and the total count."""
    query = db.select(Workspace).where(Workspace.org_id == org.id)
    if prefix:
        query = query.where(Workspace.name.startswith(prefix, autoescape=True))
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery())) or 0
    query = query.order_by(Workspace.name).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query)), total


def update_workspace(
    workspace: Workspace, actor: str, *, name: str | None = None, tags: Tags | None = None, **settings: Any
) -> list[str]:
    """Change settings, tags (the whole set) and/or the name in one transaction, each audited; returns what changed
    (``name`` and ``tags`` included).

    Raises ``Conflict`` when the new name is taken in the organization; then nothing changes.
    """
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown workspace settings {sorted(unknown)}")
    if name is not None:
        check_name("workspace", name)
    changed = [key for key, value in settings.items() if getattr(workspace, key) != value]
    for key in changed:
        setattr(workspace, key, settings[key])
    if changed:
        record_event(
            "workspace.update",
            "ok",
            actor,
            workspace=workspace,
            commit=False,
            settings={key: settings[key] for key in changed},
        )
    if tags is not None:
        previous = {tag.key: tag.value for tag in workspace.tags}
        if replace_tags(workspace, tags):
            record_event(
                "workspace.tags", "ok", actor, workspace=workspace, commit=False, tags=dict(tags), previous=previous
            )
            changed.append("tags")
    old_name = workspace.name
    if name is not None and name != old_name:
        workspace.name = name
        record_event("workspace.rename", "ok", actor, workspace=workspace, commit=False, old_name=old_name)
        changed.append("name")
    if not changed:
        return []
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"workspace {name!r} already exists in organization {workspace.organization.name!r}") from None
    return changed


def get_workspace_by_id(workspace_id: str) -> Workspace | None:
    """The workspace with this id in any organization, or None (callers check visibility)."""
    return db.session.get(Workspace, workspace_id)


def search_workspaces(
    org: Organization,
    *,
    prefix: str | None = None,
    tags: tuple[str, ...] = (),
    bindings: Bindings = (),
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[Workspace], int]:
    """A page of the organization's workspaces by name (tags loaded), narrowed by name prefix, tag keys and
    key/value bindings (all must match)."""
    query = _search(org, prefix, tags, bindings)
    total = db.session.scalar(query.with_only_columns(db.func.count()).order_by(None)) or 0
    page = query.options(selectinload(Workspace.tags)).order_by(Workspace.name).offset(offset).limit(limit)
    return list(db.session.scalars(page)), total


def search_workspace_names(
    org: Organization, *, prefix: str | None = None, tags: tuple[str, ...] = (), bindings: Bindings = ()
) -> list[str]:
    """Every name ``search_workspaces`` would page through, in order (for callers that filter by permission)."""
    query = _search(org, prefix, tags, bindings).with_only_columns(Workspace.name).order_by(Workspace.name)
    return list(db.session.scalars(query))


def get_workspaces_by_names(org: Organization, names: list[str]) -> list[Workspace]:
    """The organization's workspaces with these names, in the order given (missing names are skipped)."""
    if not names:
        return []
    query = (
        db.select(Workspace)
        .where(Workspace.org_id == org.id, Workspace.name.in_(names))
        .options(selectinload(Workspace.tags))
    )
    found = {workspace.name: workspace for workspace in db.session.scalars(query)}
    return [found[name] for name in names if name in found]


def _search(org: Organization, prefix: str | None, tags: tuple[str, ...], bindings: Bindings) -> Any:
    query = db.select(Workspace).where(Workspace.org_id == org.id, *tagged(tags, bindings))
    if prefix:
        query = query.where(Workspace.name.startswith(prefix, autoescape=True))
    return query


def count_workspaces(org: Organization) -> int:
    """How many workspaces the organization has."""
    return db.session.scalar(db.select(db.func.count()).where(Workspace.org_id == org.id)) or 0
