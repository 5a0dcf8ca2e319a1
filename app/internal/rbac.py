"""Roles, permissions, assignments and the permission tester (``/rbac/...``), within the caller's organization.

Everything here needs ``rbac.manage`` in the organization, except testing one's own permissions.
"""

from __future__ import annotations

from flask import Response, jsonify

from app.auth.access import explain
from app.auth.permissions import Action
from app.core.errors import Conflict, NotFound
from app.internal import schemas
from app.internal.door import caller, json_body, require_access, require_org, route
from app.internal.serializers import permission_json, role_json, user_json
from app.models import Organization, Role, User
from app.repositories import orgs, rbac, users


def _managed_org() -> Organization:
    """The organization, after checking that the caller may manage its roles."""
    access = require_access()
    access.require(Action.MANAGE)
    return access.org


def _role_reply(role: Role, status: int = 200) -> tuple[Response, int]:
    return jsonify(role_json(role, rbac.permissions_by_role([role])[role.id])), status


@route("/rbac/roles", ["GET"])
def list_roles() -> Response:
    """The organization's roles with their permissions."""
    org = _managed_org()
    roles = rbac.list_roles(org)
    attached = rbac.permissions_by_role(roles)
    return jsonify(roles=[role_json(role, attached[role.id]) for role in roles], count=len(roles))


@route("/rbac/roles", ["POST"])
def create_role() -> tuple[Response, int]:
    """Create a role ``{"name","description"?,"permissions"?:[id or name]}``; 409 when the name exists."""
    org = _managed_org()
    body = json_body(schemas.RoleCreate())
    role = rbac.create_role(
        org,
        body["name"].strip(),
        caller().principal.subject,
        body.get("description") or "",
        body.get("permissions") or [],
    )
    return _role_reply(role, 201)


@route("/rbac/roles/<ref>", ["DELETE"])
def delete_role(ref: str) -> Response:
    """Delete a custom role and its assignments; built-in roles cannot be deleted (409)."""
    org = _managed_org()
    role = rbac.require_role(org, ref)
    rbac.delete_role(org, role, caller().principal.subject)
    return jsonify(status="deleted", id=role.id, name=role.name)


@route("/rbac/roles/<ref>/permissions", ["POST"])
def attach_permission(ref: str) -> tuple[Response, int]:
    """Attach ``{"permission_id"}`` (id or name) to the role (idempotent)."""
    org = _managed_org()
    role = rbac.require_role(org, ref)
    body = json_body(schemas.Attach())
    rbac.attach_permission(org, role, rbac.require_permission(org, body["permission_id"]), caller().principal.subject)
    return _role_reply(role)


@route("/rbac/roles/<ref>/permissions/<permission_ref>", ["DELETE"])
def detach_permission(ref: str, permission_ref: str) -> tuple[Response, int]:
    """Detach a permission from the role; 404 when it is not attached."""
    org = _managed_org()
    role = rbac.require_role(org, ref)
    rbac.detach_permission(org, role, rbac.require_permission(org, permission_ref), caller().principal.subject)
    return _role_reply(role)


@route("/rbac/permissions", ["GET"])
def list_permissions() -> Response:
    """The organization's permissions with their rules."""
    org = _managed_org()
    found = rbac.list_permissions(org)
    return jsonify(permissions=[permission_json(p) for p in found], count=len(found))


@route("/rbac/permissions", ["POST"])
def create_permission() -> tuple[Response, int]:
    """Create ``{"name","description"?,"rules":[{"actions","resources","effect"}]}``; resources are unit names."""
    org = _managed_org()
    body = json_body(schemas.PermissionCreate())
    permission = rbac.create_permission(
        org, body["name"].strip(), body["rules"], caller().principal.subject, body.get("description") or ""
    )
    return jsonify(permission_json(permission)), 201


@route("/rbac/permissions/<ref>", ["DELETE"])
def delete_permission(ref: str) -> Response:
    """Delete a custom permission (detached from every role); built-in permissions cannot be deleted (409)."""
    org = _managed_org()
    permission = rbac.require_permission(org, ref)
    rbac.delete_permission(org, permission, caller().principal.subject)
    return jsonify(status="deleted", id=permission.id, name=permission.name)


def _member(org: Organization, subject: str | None, email: str | None) -> User:
    """The member named by subject (preferred) or email; 404 when none, 409 when an email is ambiguous."""
    if subject:
        user = orgs.get_member(org, subject)
        if user is None:
            raise NotFound(f"user {subject!r} is not a member of organization {org.name!r}")
        return user
    assert email is not None
    found = orgs.find_members_by_email(org, email)
    if not found:
        raise NotFound(f"no member of organization {org.name!r} has email {email!r}")
    if len(found) > 1:
        raise Conflict(f"several members have email {email!r}; name the user by subject")
    return found[0]


def _assignment_reply(org: Organization, user: User, role: Role, status: str) -> Response:
    roles = rbac.roles_of_member(org, user)
    return jsonify(
        status=status,
        subject=user.subject,
        email=user.email,
        role_id=role.id,
        role=role.name,
        roles=[r.name for r in roles],
    )


@route("/rbac/assign", ["POST"])
def assign_role() -> Response:
    """Give a role ``{"subject"?,"email","role_id"}``; a subject that is not a member yet becomes one."""
    org = _managed_org()
    body = json_body(schemas.Assignment())
    role = rbac.require_role(org, body["role_id"])
    subject, email = body.get("subject"), body.get("email")
    if subject and orgs.get_member(org, subject) is None:
        user = users.ensure_user(subject, email)
    else:
        user = _member(org, subject, email)
    added = rbac.assign_role(org, user, role, caller().principal.subject)
    return _assignment_reply(org, user, role, "assigned" if added else "unchanged")


@route("/rbac/revoke", ["POST"])
def revoke_role() -> Response:
    """Take a role ``{"subject"?,"email","role_id"}``; the last admin keeps theirs (409)."""
    org = _managed_org()
    body = json_body(schemas.Assignment())
    role = rbac.require_role(org, body["role_id"])
    user = _member(org, body.get("subject"), body.get("email"))
    removed = rbac.revoke_role(org, user, role, caller().principal.subject)
    return _assignment_reply(org, user, role, "revoked" if removed else "unchanged")


@route("/rbac/users", ["GET"])
def list_assignments() -> Response:
    """Every member with their roles."""
    org = _managed_org()
    roles = rbac.roles_by_member(org)
    members = orgs.list_members(org)
    return jsonify(users=[user_json(user, roles.get(user.id, [])) for user in members], count=len(members))


@route("/rbac/test", ["POST"])
def test_permission() -> Response:
    """What the roles of a member (default: the caller) say about ``action`` on ``resource`` (a unit name)."""
    current = caller()
    org = require_org()
    body = json_body(schemas.PermissionTest())
    subject, email = body.get("subject"), body.get("email")
    is_self = (
        (not subject and not email)
        or subject == current.principal.subject
        or (
            not subject
            and email is not None
            and current.principal.email is not None
            and email.lower() == current.principal.email.lower()
        )
    )
    if not is_self:
        require_access().require(Action.MANAGE)
    user = _member(org, subject or (None if email else current.principal.subject), email if not subject else None)
    resource = (body.get("resource") or "").strip()
    workspace_name = None if resource in ("", "*") else resource
    decision = explain(org, user.id, body["action"], workspace_name)
    return jsonify(
        status="allowed" if decision.allowed else "denied",
        reason=decision.reason,
        user_roles=[r.name for r in rbac.roles_of_member(org, user)],
        applicable_permissions=list(decision.matched),
        action=body["action"],
        resource=resource or "*",
        subject=user.subject,
        email=user.email,
    )
