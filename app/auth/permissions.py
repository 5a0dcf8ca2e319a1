"""The one permission check every API calls: organization visibility, token scope, workspace restriction."""

from __future__ import annotations

from app.auth.principal import Principal
from app.errors import Forbidden, NotFound
from app.models import Organization
from app.repositories.orgs import is_member


class Action:
    """Action names, shared with the RBAC rules of the management API."""

    READ = "unit.read"
    READ_OUTPUTS = "unit.read_outputs"
    WRITE = "unit.write"
    LOCK = "unit.lock"
    DELETE = "unit.delete"
    MANAGE = "rbac.manage"


_SCOPE_ACTIONS = {
    "full": None,  # everything the membership allows
    "read-only": {Action.READ, Action.READ_OUTPUTS},
    "outputs-only": {Action.READ_OUTPUTS},
}


def can_see_org(principal: Principal, org: Organization) -> bool:
    """True when the caller may know that ``org`` exists."""
    if principal.superuser:
        return True
    if principal.org_id is not None and principal.org_id != org.id:
        return False
    if principal.user_id is not None:
        return is_member(org.id, principal.user_id)
    return principal.org_id == org.id


def authorize(principal: Principal, org: Organization, action: str, workspace_name: str | None = None) -> None:
    """Raise ``NotFound`` when the organization is not visible, ``Forbidden`` when the action is not allowed."""
    if not can_see_org(principal, org):
        raise NotFound(f"organization {org.name!r} not found")
    if principal.superuser:
        return
    allowed = _SCOPE_ACTIONS.get(principal.scope, set())
    if allowed is not None and action not in allowed:
        raise Forbidden(f"this token is {principal.scope} and may not perform {action}")
    if principal.workspace_name is not None and workspace_name != principal.workspace_name:
        raise Forbidden(f"this token is limited to workspace {principal.workspace_name!r}")
