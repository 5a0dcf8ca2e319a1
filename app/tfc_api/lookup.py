"""Resolving what a TFC API path names, always through ``open_org`` / ``authorize`` (the one permission check).

Ids are looked up globally and then checked against the caller, so an id from another organization is a plain
404 that reveals nothing. On the internal door, ``X-Org-ID`` narrows every lookup to that organization.
"""

from __future__ import annotations

from flask import g

from app.auth.access import open_org
from app.auth.permissions import Action, authorize
from app.core.errors import Forbidden, NotFound
from app.models import Organization, StateVersion, Workspace
from app.repositories.state_versions import get_version_by_id
from app.repositories.workspaces import get_workspace_by_id, get_workspace_by_ref
from app.tfc_api.context import caller, org_scope

# The least a caller may hold to see a workspace at all: outputs-only tokens (terraform_remote_state consumers)
# must still read the organization, the workspace and its current version's outputs.
VISIBLE = Action.READ_OUTPUTS


def find_org(ref: str, action: str = VISIBLE, workspace_name: str | None = None) -> Organization:
    """The organization by name, id or external id, with ``action`` authorized; ``NotFound`` when invisible."""
    org = open_org(caller(), ref, action, workspace_name)
    scope = org_scope()
    if scope is not None and scope.id != org.id:
        raise NotFound(f"organization {ref!r} not found")
    return org


def find_workspace(org: Organization, ref: str, action: str = VISIBLE) -> Workspace:
    """The organization's workspace by name or id, with ``action`` authorized on it."""
    return _checked(
        org, get_workspace_by_ref(org, ref), f"workspace {ref!r} not found in organization {org.name!r}", action
    )


def find_workspace_by_id(workspace_id: str, action: str = VISIBLE) -> Workspace:
    """Any visible workspace by id, with ``action`` authorized on it; ``NotFound`` for other organizations' ids."""
    workspace = get_workspace_by_id(workspace_id)
    if workspace is None:
        raise NotFound(f"workspace {workspace_id!r} not found")
    try:
        org = find_org(workspace.org_id)
    except (Forbidden, NotFound):
        raise NotFound(f"workspace {workspace_id!r} not found") from None
    return _checked(org, workspace, f"workspace {workspace_id!r} not found", action)


def _checked(org: Organization, workspace: Workspace | None, not_found: str, action: str) -> Workspace:
    # A workspace the caller may not even see answers exactly like a missing one (404); only a visible workspace
    # can give a 403 for an action the caller lacks.
    if workspace is None or not allowed(org, VISIBLE, workspace.name):
        raise NotFound(not_found)
    if action != VISIBLE:
        authorize(caller(), org, action, workspace.name)
    return workspace


def find_version(version_id: str, action: str = VISIBLE) -> StateVersion:
    """A state version by id, when its workspace is visible and ``action`` is allowed on it."""
    version = get_version_by_id(version_id)
    if version is None:
        raise NotFound(f"state version {version_id!r} not found")
    try:
        find_workspace_by_id(version.workspace_id, action)
    except NotFound:
        raise NotFound(f"state version {version_id!r} not found") from None
    return version


def allowed(org: Organization, action: str, workspace_name: str | None) -> bool:
    """Whether the caller may do ``action`` (the same check, answered as a bool; memoized for the request)."""
    cache: dict[tuple[str, str, str | None], bool] = g.setdefault("tfc_allowed", {})
    key = (org.id, action, workspace_name)
    if key not in cache:
        try:
            authorize(caller(), org, action, workspace_name)
            cache[key] = True
        except (Forbidden, NotFound):
            cache[key] = False
    return cache[key]
