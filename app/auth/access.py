"""Resolving what a request names (organization, workspace) through the one permission check.

Every API goes through these two functions, so visibility rules (404 for other organizations, never a leak
of existence) and workspace auto-creation behave the same everywhere.
"""

from __future__ import annotations

from app.auth.permissions import Action, authorize, can_see_org
from app.auth.principal import Principal
from app.core.errors import NotFound
from app.models import Organization, Workspace
from app.repositories.audit import record_event
from app.repositories.names import check_name
from app.repositories.orgs import create_org, get_org
from app.repositories.workspaces import ensure_workspace, get_workspace, get_workspace_by_ref


def open_org(
    principal: Principal, org_ref: str, action: str, workspace_name: str | None = None, *, create_missing: bool = False
) -> Organization:
    """The organization, after checking ``action`` on ``workspace_name``; ``NotFound`` when missing or invisible.

    With authentication disabled (development) a missing organization is created on first write or lock.
    """
    org = get_org(org_ref)
    if org is None and create_missing and principal.kind == "disabled":
        org = create_org(check_name("organization", org_ref), created_by=principal.subject)
    if org is None or not can_see_org(principal, org):
        raise NotFound(f"organization {org_ref!r} not found")
    authorize(principal, org, action, workspace_name)
    return org


def open_workspace(
    principal: Principal, org: Organization, ref: str, *, by_id: bool = False, create_missing: bool = False
) -> Workspace:
    """The workspace ``ref`` (a name, or also an id when ``by_id``); created on demand when the caller may write."""
    workspace = get_workspace_by_ref(org, ref) if by_id else get_workspace(org, ref)
    if workspace is not None:
        return workspace
    if not create_missing:
        raise NotFound(f"workspace {ref!r} not found in organization {org.name!r}")
    authorize(principal, org, Action.WRITE, check_name("workspace", ref))
    workspace, created = ensure_workspace(org, ref, principal.subject)
    if created:
        record_event("workspace.create", "ok", principal.subject, workspace=workspace)
    return workspace


def default_org_ref(principal: Principal, requested: str | None) -> str:
    """The organization a request without one in its path means: ``?org=``, else the token's organization."""
    if requested:
        return requested
    if principal.org_id:
        return principal.org_id
    raise NotFound("no organization given: add ?org=<organization> to the URL")
