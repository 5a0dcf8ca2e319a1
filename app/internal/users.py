"""Users and membership (``/users``), the caller (``/me``) and ``/health``."""

from __future__ import annotations

from flask import Response, jsonify

from app.auth.access import access_to, may_see
from app.auth.permissions import Action
from app.core.errors import Conflict, Forbidden, NotFound
from app.internal import schemas
from app.internal.door import INTERNAL, Caller, caller, json_body, require_org, route
from app.internal.serializers import org_json, user_json
from app.models import Organization, User
from app.repositories import orgs, rbac, users


def _may_give_role(current: Caller, org: Organization, role_ref: str) -> None:
    """A person registering themselves may ask for a role beyond ``default`` only as an admin of the organization.

    Someone who is not a member yet gets a 403 that says so, not the 404 a stranger to the organization would get:
    the webhook door vouched for them, and the organization was named by the UI.
    """
    if not may_see(current.principal, org):
        raise Forbidden(
            f"giving the role {role_ref!r} needs rbac.manage in organization {org.name!r}, and "
            f"{current.principal.subject!r} is not a member yet: register without a role (they get "
            f"{rbac.DEFAULT_ROLE!r}), then an admin assigns {role_ref!r}"
        )
    access_to(current.principal, org).require(Action.MANAGE)


@route("/users", ["POST"])
def create_user() -> tuple[Response, int]:
    """Make ``subject`` a member of the organization (idempotent): 201 when the membership is new, else 200.

    On the webhook door the UI vouches for who the person is, so people may register themselves there, and the
    email the UI sends is the identity provider's (its sync). On the token door nobody vouches: adding anyone,
    the caller included, needs ``rbac.manage`` in the organization, and an email given there only applies to a
    user who belongs to no other organization (so one organization's administrator cannot change how another
    organization's role assignments by email resolve). Asking for a role other than ``default`` always needs
    ``rbac.manage``. A new member without ``role_id`` gets ``default``.
    """
    current = caller()
    body = json_body(schemas.UserCreate())
    subject, role_ref, email = body["subject"].strip(), body.get("role_id"), body.get("email") or None
    self_registration = current.door == INTERNAL and subject == current.principal.subject
    org = require_org(member=not self_registration)
    if not self_registration:
        access_to(current.principal, org).require(Action.MANAGE)
    elif role_ref and role_ref != rbac.DEFAULT_ROLE:
        _may_give_role(current, org, role_ref)
    user = users.ensure_user(subject, email)
    if email and user.email != email:
        _change_email(current, org, user, email)
    created, _ = orgs.join_org(org, user, current.principal.subject, role_ref)
    response = user_json(user, rbac.roles_of_member(org, user))
    response["status"] = "created" if created else "existing"
    if role_ref:
        response["role_id"] = role_ref
    return jsonify(response), 201 if created else 200


def _change_email(current: Caller, org: Organization, user: User, email: str) -> None:
    if current.door == INTERNAL:
        users.set_email(user, email, current.principal.subject, "identity provider (web UI sync)", org.id)
        return
    others = users.member_org_ids(user) - {org.id}
    if others:
        raise Conflict(
            f"user {user.subject!r} also belongs to other organizations; their email comes from the identity "
            "provider (the web UI's sync) or a server operator (flask users create --email)"
        )
    users.set_email(user, email, current.principal.subject, f"administrator of {org.name}", org.id)


@route("/users", ["GET"])
def list_users() -> Response:
    """The organization's members with their roles."""
    org = require_org()
    roles = rbac.roles_by_member(org)
    members = orgs.list_members(org)
    return jsonify(users=[user_json(user, roles.get(user.id, [])) for user in members], count=len(members))


@route("/users/<path:subject>", ["GET"])
def show_user(subject: str) -> Response:
    """A member (or the caller themselves) with email and roles in the organization."""
    current = caller()
    if current.org_ref is None and current.door == INTERNAL:
        if subject != current.principal.subject:
            raise NotFound(f"user {subject!r} not found")
        me = users.get_user_by_subject(subject)
        assert me is not None
        return jsonify(user_json(me, []))
    org = require_org(member=not (current.door == INTERNAL and subject == current.principal.subject))
    user = orgs.get_member(org, subject) or (
        users.get_user_by_subject(subject) if subject == current.principal.subject else None
    )
    if user is None:
        raise NotFound(f"user {subject!r} not found in organization {org.name!r}")
    return jsonify(user_json(user, rbac.roles_of_member(org, user)))


@route("/me", ["GET"])
def me() -> Response:
    """The caller, the organization of the request, and the caller's roles there."""
    current = caller()
    principal = current.principal
    org = require_org() if current.org_ref is not None else None
    user = users.get_user_by_subject(principal.subject) if principal.user_id else None
    roles = [role.name for role in rbac.roles_of_member(org, user)] if org is not None and user is not None else []
    return jsonify(
        user_id=principal.subject,
        subject=principal.subject,
        email=principal.email,
        kind=principal.kind,
        org_id=org.id if org is not None else None,
        organization=org_json(org) if org is not None else None,
        roles=roles,
        scope=principal.scope,
        workspace=principal.workspace_name,
    )


@route("/health", ["GET"], org_header=False)
def health() -> Response:
    """The management API answers (and the caller authenticated)."""
    current = caller()
    return jsonify(status="ok", type=current.door, auth_type="webhook" if current.door == INTERNAL else "token")
