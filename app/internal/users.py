"""Users and membership (``/users``), the caller (``/me``) and ``/health``."""

from __future__ import annotations

from flask import Response, jsonify

from app.auth.permissions import Action, authorize
from app.errors import NotFound
from app.internal import schemas
from app.internal.door import INTERNAL, caller, json_body, require_org, route
from app.internal.serializers import org_json, user_json
from app.repositories import orgs, rbac, users


@route("/users", ["POST"])
def create_user() -> tuple[Response, int]:
    """Make ``subject`` a member of the organization (idempotent): 201 when the membership is new, else 200.

    People may register themselves (the UI vouches for who they are); adding someone else, or asking for a
    role other than ``default``, needs ``rbac.manage``. A new member without ``role_id`` gets ``default``.
    """
    current = caller()
    body = json_body(schemas.UserCreate())
    subject, role_ref = body["subject"].strip(), body.get("role_id")
    is_self = subject == current.principal.subject
    org = require_org(member=not is_self)
    if not is_self or (role_ref and role_ref != rbac.DEFAULT_ROLE):
        authorize(current.principal, org, Action.MANAGE)
    user = users.ensure_user(subject, body.get("email") or None)
    created, _ = orgs.join_org(org, user, current.principal.subject, role_ref)
    response = user_json(user, rbac.roles_of_member(org, user))
    response["status"] = "created" if created else "existing"
    if role_ref:
        response["role_id"] = role_ref
    return jsonify(response), 201 if created else 200


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
    org = require_org(member=subject != current.principal.subject)
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
