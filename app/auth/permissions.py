"""The one permission check every API calls: organization visibility, token scope, workspace restriction, RBAC.

Order of the check in ``authorize``: the organization must be visible (else ``NotFound``, never a hint that it
exists); superusers (authentication disabled, static users) may do everything; a token's scope and workspace
restriction narrow what it may do; then the roles of the user behind the request decide (``app.core.policy``).
Principals without a user (organization tokens, JWT grants) are bounded by their scope and grant alone and never
get organization-wide actions such as ``rbac.manage``. If the permission store cannot be read, the answer is a
503 (``BackendUnavailable("permissions")``), never an allow.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from app.auth.principal import Principal
from app.core import policy
from app.core.errors import BackendUnavailable, Forbidden, NotFound
from app.extensions import db
from app.models import Organization
from app.repositories import rbac as rbac_repo
from app.repositories.orgs import is_member

log = logging.getLogger("statesman.auth")


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
    """Raise ``NotFound`` when the organization is not visible, ``Forbidden`` when the action is not allowed.

    ``workspace_name=None`` is the organization-level gate: "may the caller do ``action`` on some workspace of this
    organization" (a listing, or a request that names a workspace by id before it is looked up). Callers then check
    the actual workspace by name, or filter a listing with ``allowed_names``.
    """
    if not can_see_org(principal, org):
        raise NotFound(f"organization {org.name!r} not found")
    _check_action(principal, org, action, workspace_name)


def allowed_names(principal: Principal, org: Organization, action: str, names: list[str]) -> list[str]:
    """The names (in order) on which ``action`` is allowed: ``authorize`` for a listing, visibility checked once."""
    if not can_see_org(principal, org):
        raise NotFound(f"organization {org.name!r} not found")
    result = []
    for name in names:
        try:
            _check_action(principal, org, action, name)
        except Forbidden:
            continue
        result.append(name)
    return result


def sees_every_workspace(principal: Principal, org: Organization, action: str) -> bool:
    """True when ``action`` is allowed on every workspace of ``org``, so a listing needs no filtering by name."""
    if principal.superuser:
        return True
    allowed = _SCOPE_ACTIONS.get(principal.scope, set())
    if (allowed is not None and action not in allowed) or principal.workspace_name is not None:
        return False
    if principal.user_id is None:
        return True
    return policy.allows_everywhere(member_grants(org, principal.user_id), action)


def _check_action(principal: Principal, org: Organization, action: str, workspace_name: str | None) -> None:
    if principal.superuser:
        return
    allowed = _SCOPE_ACTIONS.get(principal.scope, set())
    if allowed is not None and action not in allowed:
        raise Forbidden(f"this token is {principal.scope} and may not perform {action}")
    if principal.workspace_name is not None:
        if action in policy.ORG_WIDE_ACTIONS:
            raise Forbidden(
                f"this token is limited to workspace {principal.workspace_name!r} and may not perform {action}"
            )
        if workspace_name is not None and workspace_name != principal.workspace_name:
            raise Forbidden(f"this token is limited to workspace {principal.workspace_name!r}")
    if principal.user_id is None:
        if action in policy.ORG_WIDE_ACTIONS:
            raise Forbidden(f"{action} needs a user: organization tokens and JWT grants cannot perform it")
        return
    decision = policy.decide(member_grants(org, principal.user_id), action, workspace_name)
    if not decision.allowed:
        raise Forbidden(decision.reason)


def is_allowed(principal: Principal, org: Organization, action: str, workspace_name: str | None = None) -> bool:
    """``authorize`` as a yes/no answer (for filtering listings); ``NotFound`` and 503s still raise."""
    try:
        authorize(principal, org, action, workspace_name)
    except Forbidden:
        return False
    return True


def explain(org: Organization, user_id: str, action: str, workspace_name: str | None) -> policy.Decision:
    """What the user's roles alone say about ``action`` on ``workspace_name`` (for ``/rbac/test``)."""
    return policy.decide(member_grants(org, user_id), action, workspace_name)


def member_grants(org: Organization, user_id: str) -> list[policy.Grant]:
    """The member's grants, or ``BackendUnavailable`` when they cannot be read (fail closed)."""
    try:
        return rbac_repo.grants_for_member(org.id, user_id)
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error("permission store error for organization %s: %s", org.id, type(exc).__name__)
        raise BackendUnavailable("permissions", "the permission store did not answer; access is denied") from exc
    except ValueError as exc:
        log.error("malformed permission rule in organization %s: %s", org.id, exc)
        raise BackendUnavailable("permissions", "a stored permission rule is malformed; access is denied") from exc
