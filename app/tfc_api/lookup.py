"""Resolving what a TFC API path names, through the one resolution step (``app.auth.access``).

Ids are looked up globally and then checked against the caller, so an id from another organization is a plain
404 that reveals nothing. On the internal door, ``X-Org-ID`` narrows every lookup to that organization. As in
Terraform Cloud, a workspace the caller may not see answers like a missing one (404); a visible one can give 403.
"""

from __future__ import annotations

from app.auth.access import VISIBLE, Access, Target, access_to, resolve_org, resolve_workspace
from app.auth.permissions import Action
from app.core.errors import Forbidden, NotFound
from app.models import AgentPool, Organization, Run, StateVersion
from app.repositories import runs
from app.repositories.agent_pools import get_pool_by_id
from app.repositories.state_versions import get_version_by_id
from app.repositories.workspaces import get_workspace_by_id
from app.tfc_api.context import caller, org_scope

__all__ = [
    "VISIBLE",
    "access",
    "find_agent_pool",
    "find_org",
    "find_run",
    "find_run_by_apply",
    "find_run_by_plan",
    "find_version",
    "find_workspace",
    "find_workspace_by_id",
]


def find_org(ref: str, action: str = VISIBLE) -> Access:
    """The caller's access to the organization (name, id or external id), ``action`` authorized on some workspace
    of it; ``NotFound`` when missing or invisible."""
    found = _in_scope(ref)
    found.require(action)
    return found


def _in_scope(ref: str) -> Access:
    """The caller's access to the organization, narrowed to the UI proxy's ``X-Org-ID`` on the internal door."""
    found = resolve_org(caller(), ref)
    scope = org_scope()
    if scope is not None and scope.id != found.org.id:
        raise NotFound(f"organization {ref!r} not found")
    return found


def access(org: Organization) -> Access:
    """The caller's access to an organization already resolved in this request (answered from memory)."""
    return access_to(caller(), org)


def find_workspace(org: Access, ref: str, action: str = VISIBLE) -> Target:
    """The organization's workspace by name or id, with ``action`` authorized on it."""
    return resolve_workspace(org, ref, action, by_id=True, hide_forbidden=True)


def find_workspace_by_id(workspace_id: str, action: str = VISIBLE) -> Target:
    """Any visible workspace by id, with ``action`` authorized on it; ``NotFound`` for other organizations' ids."""
    workspace = get_workspace_by_id(workspace_id)
    if workspace is None:
        raise NotFound(f"workspace {workspace_id!r} not found")
    try:
        # No organization-level gate here: whether the caller may see this workspace decides, so an id the caller
        # may not see is a 404 exactly like an unknown one.
        return find_workspace(_in_scope(workspace.org_id), workspace.id, action)
    except NotFound:
        raise NotFound(f"workspace {workspace_id!r} not found") from None


def find_version(version_id: str, action: str = VISIBLE) -> StateVersion:
    """A state version by id, when its workspace is visible and ``action`` is allowed on it."""
    version = get_version_by_id(version_id)
    if version is None:
        raise NotFound(f"state version {version_id!r} not found")
    try:
        find_workspace_by_id(version.workspace_id, action)
        return version
    except NotFound:
        raise NotFound(f"state version {version_id!r} not found") from None


def find_agent_pool(pool_id: str) -> tuple[Access, AgentPool]:
    """An agent pool by id with the caller's access to its organization, where the caller may manage it (agent
    pools and their tokens are ``rbac.manage`` business); ``NotFound`` for other organizations' ids."""
    pool = get_pool_by_id(pool_id)
    if pool is None:
        raise NotFound(f"agent pool {pool_id!r} not found")
    try:
        return find_org(pool.org_id, Action.MANAGE), pool
    except (Forbidden, NotFound):
        raise NotFound(f"agent pool {pool_id!r} not found") from None


def find_run(run_id: str, action: str = Action.READ) -> tuple[Target, Run]:
    """A run by id with its workspace, ``action`` authorized there; ``NotFound`` for runs the caller may not see."""
    return _run_target(runs.get_run(run_id), "run", run_id, action)


def find_run_by_plan(plan_id: str, action: str = Action.READ) -> tuple[Target, Run]:
    """The run of a plan, as ``find_run``."""
    return _run_target(runs.get_run_by_plan(plan_id), "plan", plan_id, action)


def find_run_by_apply(apply_id: str, action: str = Action.READ) -> tuple[Target, Run]:
    """The run of an apply, as ``find_run``."""
    return _run_target(runs.get_run_by_apply(apply_id), "apply", apply_id, action)


def _run_target(run: Run | None, kind: str, ref: str, action: str) -> tuple[Target, Run]:
    """Runs are as visible as their workspaces; reading one (its logs show values from the state) needs
    ``unit.read``."""
    if run is None:
        raise NotFound(f"{kind} {ref!r} not found")
    try:
        return find_workspace_by_id(run.workspace_id, action), run
    except NotFound:
        raise NotFound(f"{kind} {ref!r} not found") from None
