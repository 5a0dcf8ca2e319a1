"""The one resolution step of every request: the organization and workspace it names, and what the caller may do.

``access_to`` reads what a permission decision needs (membership, the member's grants) once per request and
organization; the ``Access`` it returns answers every further "may I?" from memory, so a response that shows a
dozen permission flags still costs one read of the permission store. ``resolve_workspace`` adds the workspace and
returns a ``Target``, the guard the repositories' workspace rules ask (``app.repositories.guard``). Every API, the
CLI-free paths of runs and the UI go through here; a lookup is by shape (``app.repositories.names``), so it is never
ambiguous, and an organization or workspace the caller may not see is a plain 404 that reveals nothing.

The memo lives on ``flask.g`` (the request's edge); across requests, the organization and a member's grants come
from a per-process memory with a documented bound (``app.auth.access_cache``). Repositories never cache permissions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from flask import g, has_app_context, has_request_context
from sqlalchemy.exc import SQLAlchemyError

from app.auth.access_cache import Standing, cached_membership, cached_org
from app.auth.permissions import Action, allowed_everywhere, may_see_org, refusal
from app.auth.principal import Principal
from app.core import policy
from app.core.errors import BackendUnavailable, Forbidden, NotFound
from app.extensions import db
from app.models import Organization, Workspace
from app.repositories import rbac as rbac_repo
from app.repositories.names import check_name, is_valid_name
from app.repositories.orgs import create_org, get_org, is_member, list_member_orgs, list_orgs
from app.repositories.workspaces import ensure_workspace, get_workspace, get_workspace_by_ref

log = logging.getLogger("statesman.auth")
_MEMO_KEY = "statesman_access"
_RESOLVED_KEY = "statesman_resolved"

# The least a caller may hold to see a workspace at all: outputs-only tokens (terraform_remote_state consumers)
# must still read the organization, the workspace and its current version's outputs.
VISIBLE = Action.READ_OUTPUTS


@dataclass
class Access:
    """What ``principal`` may do in ``org``, answered from the grants read once."""

    principal: Principal
    org: Organization
    grants: Sequence[policy.Grant]
    _answers: dict[tuple[str, str | None], str | None] = field(default_factory=dict, repr=False)
    _everywhere: dict[str, bool] = field(default_factory=dict, repr=False)

    @property
    def actor(self) -> str:
        """The subject audit events record."""
        return self.principal.subject

    def refusal(self, action: str, workspace_name: str | None = None) -> str | None:
        """Why ``action`` is refused, or None when allowed (remembered for the request).

        An action allowed on every workspace is answered for any name without matching rules again: a page of
        workspaces asks five actions of each.
        """
        key = (action, workspace_name)
        if key not in self._answers:
            if (
                workspace_name is not None
                and action not in policy.ORG_WIDE_ACTIONS
                and self.sees_every_workspace(action)
            ):
                self._answers[key] = None
            else:
                self._answers[key] = refusal(self.principal, self.grants, action, workspace_name)
        return self._answers[key]

    def allows(self, action: str, workspace_name: str | None = None) -> bool:
        """Whether the caller may do ``action`` on ``workspace_name`` (None: on some workspace of the org)."""
        return self.refusal(action, workspace_name) is None

    def require(self, action: str, workspace_name: str | None = None) -> None:
        """Raise ``Forbidden`` with the reason when ``action`` is not allowed."""
        reason = self.refusal(action, workspace_name)
        if reason is not None:
            raise Forbidden(reason)

    def sees_every_workspace(self, action: str) -> bool:
        """True when ``action`` is allowed on every workspace, so a listing needs no filtering by name."""
        if action not in self._everywhere:
            self._everywhere[action] = allowed_everywhere(self.principal, self.grants, action)
        return self._everywhere[action]

    def allowed_names(self, action: str, names: Sequence[str]) -> list[str]:
        """The names (in order) on which ``action`` is allowed."""
        return [name for name in names if self.allows(action, name)]


@dataclass(frozen=True)
class Target:
    """One workspace and the caller's access to it: the guard the repositories' workspace rules ask."""

    access: Access
    workspace: Workspace

    @property
    def actor(self) -> str:
        """The subject audit events record."""
        return self.access.actor

    def allows(self, action: str) -> bool:
        """Whether the caller may do ``action`` on this workspace."""
        return self.access.allows(action, self.workspace.name)

    def require(self, action: str) -> None:
        """Raise ``Forbidden`` when the caller may not do ``action`` on this workspace."""
        self.access.require(action, self.workspace.name)


def access_to(principal: Principal, org: Organization) -> Access:
    """The caller's access to ``org`` (read once per request); ``NotFound`` when the caller may not see it."""
    # Per request only: a CLI command runs in one long app context, where remembered answers would go stale.
    memo: dict[tuple[Principal, str], Access | None] = g.setdefault(_MEMO_KEY, {}) if has_request_context() else {}
    key = (principal, org.id)
    if key not in memo:
        memo[key] = _load(principal, org)
    found = memo[key]
    if found is None:
        raise NotFound(f"organization {org.name!r} not found")
    return found


def may_see(principal: Principal, org: Organization) -> bool:
    """True when the caller may know that ``org`` exists."""
    try:
        access_to(principal, org)
    except NotFound:
        return False
    return True


def visible_orgs(principal: Principal) -> list[Organization]:
    """The organizations the caller may see, by name (every API's organization listing)."""
    if principal.superuser:
        candidates = list_orgs()
    elif principal.org_id:
        bound = get_org(principal.org_id)
        candidates = [bound] if bound else []
    elif principal.user_id:
        candidates = list_member_orgs(principal.user_id)
    else:
        candidates = []
    return [org for org in candidates if may_see(principal, org)]


def _load(principal: Principal, org: Organization) -> Access | None:
    standing = _standing(org, principal.user_id) if principal.user_id and not principal.superuser else None
    member = standing is not None and standing.member
    if not may_see_org(principal, org.id, member):
        return None
    return Access(principal, org, standing.grants if standing is not None and member else ())


def _standing(org: Organization, user_id: str) -> Standing:
    """Whether the user belongs to ``org`` and the grants of their roles there (remembered briefly per process)."""

    def load() -> Standing:
        member = _is_member(org, user_id)
        return Standing(member, tuple(_grants(org, user_id)) if member else ())

    return cached_membership(org.id, user_id, load)


def _is_member(org: Organization, user_id: str) -> bool:
    try:
        return is_member(org.id, user_id)
    except SQLAlchemyError as exc:
        raise _store_unavailable(org, exc) from exc


def _grants(org: Organization, user_id: str) -> list[policy.Grant]:
    """The member's grants, or ``BackendUnavailable`` when they cannot be read (fail closed, never an allow)."""
    try:
        return rbac_repo.grants_for_member(org.id, user_id)
    except SQLAlchemyError as exc:
        raise _store_unavailable(org, exc) from exc
    except ValueError as exc:
        log.error("malformed permission rule in organization %s: %s", org.id, exc)
        raise BackendUnavailable("permissions", "a stored permission rule is malformed; access is denied") from exc


def _store_unavailable(org: Organization, exc: SQLAlchemyError) -> BackendUnavailable:
    db.session.rollback()
    log.error("permission store error for organization %s: %s", org.id, type(exc).__name__)
    return BackendUnavailable("permissions", "the permission store did not answer; access is denied")


def resolve_org(principal: Principal, org_ref: str, *, create_missing: bool = False) -> Access:
    """The caller's access to the organization ``org_ref`` (id, else name, else external id); ``NotFound`` when
    missing or invisible.

    With authentication disabled (development) a missing organization is created on first write or lock.
    """
    org = cached_org(org_ref, get_org)
    if org is None and create_missing and principal.kind == "disabled":
        org = create_org(check_name("organization", org_ref), created_by=principal.subject)
    if org is None:
        raise NotFound(f"organization {org_ref!r} not found")
    found = access_to(principal, org)
    _note_resolved(org.name, None)
    return found


def resolve_workspace(
    access: Access,
    ref: str,
    action: str,
    *,
    by_id: bool = False,
    create_missing: bool = False,
    hide_forbidden: bool = False,
) -> Target:
    """The workspace ``ref`` (a name, or also an id when ``by_id``) with ``action`` authorized on it.

    Neither answer reveals whether a workspace the caller may not use exists. By default (the http backend and the
    management API, whose paths carry names) a name the caller may not act on is a 403 whether or not it exists;
    with ``hide_forbidden`` (the TFC API, as Terraform Cloud does) a workspace the caller may not even see is a 404
    like a missing one, and only a visible workspace can give a 403. A missing workspace is created on demand
    (``create_missing``) when the caller may write it.
    """
    org = access.org
    if not hide_forbidden:
        access.require(action)
    workspace = get_workspace_by_ref(org, ref) if by_id else get_workspace(org, ref)
    if workspace is None and create_missing:
        # Everything the request will need on the new name is checked before anything is created.
        access.require(Action.WRITE, check_name("workspace", ref))
        access.require(action, ref)
        workspace, _ = ensure_workspace(org, ref, access.actor)
    if workspace is None:
        if not hide_forbidden and is_valid_name(ref):
            access.require(action, ref)
        raise NotFound(f"workspace {ref!r} not found in organization {org.name!r}")
    if hide_forbidden and not access.allows(VISIBLE, workspace.name):
        raise NotFound(f"workspace {ref!r} not found in organization {org.name!r}")
    access.require(action, workspace.name)
    _note_resolved(org.name, workspace.name)
    return Target(access, workspace)


def resolved_names() -> tuple[str | None, str | None]:
    """The organization and workspace names this request resolved and was allowed to see (for the request log)."""
    found: tuple[str | None, str | None] = g.get(_RESOLVED_KEY, (None, None)) if has_app_context() else (None, None)
    return found


def _note_resolved(org_name: str, workspace_name: str | None) -> None:
    if has_app_context():
        setattr(g, _RESOLVED_KEY, (org_name, workspace_name))


def explain(org: Organization, user_id: str, action: str, workspace_name: str | None) -> policy.Decision:
    """What a member's roles alone say about ``action`` on ``workspace_name`` (for ``/rbac/test``)."""
    return policy.decide(_grants(org, user_id), action, workspace_name)


def default_org_ref(principal: Principal, requested: str | None) -> str:
    """The organization a request without one in its path means: ``?org=``, else the token's organization."""
    if requested:
        return requested
    if principal.org_id:
        return principal.org_id
    raise NotFound("no organization given: add ?org=<organization> to the URL")
