"""The permission rules every API shares, as pure functions of the caller and the grants they hold.

Order of the check: the organization must be visible (else ``NotFound``, never a hint that it exists); superusers
(authentication disabled, static users) may do everything; a token's scope and workspace restriction narrow what it
may do; then the roles of the user behind the request decide (``app.core.policy``). Principals without a user
(organization tokens, JWT grants) are bounded by their scope and grant alone and never get organization-wide actions
such as ``rbac.manage``. Reading what these functions need (membership, grants) happens once per request, in
``app.auth.access``.

Agent tokens never reach these rules: ``app.auth.current_principal`` (the caller of every API but the agents')
refuses them with ``AGENT_ONLY``. Their scope is one no rule here knows, so they would be refused anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.auth.principal import Principal
from app.core import policy

AGENT_ONLY = "agent tokens only authenticate Statesman agents; use a user or organization token"
AGENT_API_ONLY = (
    "the agent API takes agent tokens only (`flask agents token create`, or the TFE API's agent pool tokens); "
    "user, service and organization tokens cannot run jobs"
)


class Action:
    """Action names, shared with the RBAC rules of the management API."""

    READ = policy.READ
    READ_OUTPUTS = policy.READ_OUTPUTS
    WRITE = policy.WRITE
    LOCK = policy.LOCK
    DELETE = policy.DELETE
    MANAGE = policy.MANAGE


_SCOPE_ACTIONS = {
    "full": None,  # everything the membership allows
    "read-only": {Action.READ, Action.READ_OUTPUTS},
    "outputs-only": {Action.READ_OUTPUTS},
}


def may_see_org(principal: Principal, org_id: str, is_member: bool) -> bool:
    """True when the caller may know that the organization exists (``is_member``: the caller's user belongs)."""
    if principal.superuser:
        return True
    if principal.org_id is not None and principal.org_id != org_id:
        return False
    if principal.user_id is not None:
        return is_member
    return principal.org_id == org_id


def refusal(
    principal: Principal, grants: Sequence[policy.Grant], action: str, workspace_name: str | None
) -> str | None:
    """Why ``action`` on ``workspace_name`` is refused, or None when it is allowed.

    ``workspace_name=None`` is the organization-level gate: "may the caller do ``action`` on some workspace of this
    organization" (a listing, or a request that names a workspace by id before it is looked up).
    """
    if principal.superuser:
        return None
    allowed = _SCOPE_ACTIONS.get(principal.scope, set())
    if allowed is not None and action not in allowed:
        return f"this token is {principal.scope} and may not perform {action}"
    if principal.workspace_name is not None:
        if action in policy.ORG_WIDE_ACTIONS:
            return f"this token is limited to workspace {principal.workspace_name!r} and may not perform {action}"
        if workspace_name is not None and workspace_name != principal.workspace_name:
            return f"this token is limited to workspace {principal.workspace_name!r}"
    if principal.user_id is None:
        if action in policy.ORG_WIDE_ACTIONS:
            return f"{action} needs a user: organization tokens and JWT grants cannot perform it"
        return None
    decision = policy.decide(grants, action, workspace_name)
    return None if decision.allowed else decision.reason


def allowed_everywhere(principal: Principal, grants: Sequence[policy.Grant], action: str) -> bool:
    """True when ``action`` is allowed on every workspace, so a listing needs no filtering by name."""
    if principal.superuser:
        return True
    allowed = _SCOPE_ACTIONS.get(principal.scope, set())
    if (allowed is not None and action not in allowed) or principal.workspace_name is not None:
        return False
    if principal.user_id is None:
        return True
    return policy.allows_everywhere(grants, action)
