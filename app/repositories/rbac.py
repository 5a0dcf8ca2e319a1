"""Roles, permissions and role assignments, always within one organization; every change is audited.

Every organization has two built-in roles: ``admin`` (permission ``admin``: every action on every workspace) and
``default`` (permission ``read``: ``unit.read`` on every workspace). Built-in roles and permissions cannot be deleted
or separated, and the last admin of an organization cannot lose the role, so an organization always keeps
someone who can manage it. Roles and permissions are looked up by id or name, never across organizations.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.exc import IntegrityError

from app.core import policy
from app.core.errors import Conflict, NotFound
from app.core.ids import new_id
from app.extensions import db
from app.models import Membership, Organization, Permission, Role, RoleAssignment, RolePermission, User
from app.repositories.audit import record_event
from app.repositories.names import check_name

ADMIN_ROLE = "admin"
DEFAULT_ROLE = "default"
ADMIN_PERMISSION = "admin"
READ_PERMISSION = "read"
_BUILTIN = (
    (
        ADMIN_ROLE,
        "Full access: every action on every workspace, and role management",
        ADMIN_PERMISSION,
        "Every action on every workspace",
        [{"actions": ["*"], "resources": ["*"], "effect": "allow"}],
    ),
    (
        DEFAULT_ROLE,
        "Read access to every workspace",
        READ_PERMISSION,
        "Read every workspace",
        [{"actions": [policy.READ], "resources": ["*"], "effect": "allow"}],
    ),
)


def add_builtin_roles(org: Organization, created_by: str | None = None) -> None:
    """Add the built-in roles and permissions of a new organization (flushed; the caller commits).

    Flushes in dependency order: the models have no relationships, so the unit of work does not order the rows.
    May raise ``IntegrityError`` from inserting ``org`` itself.
    """
    db.session.add(org)
    db.session.flush()
    links = []
    for role_name, role_description, permission_name, permission_description, rules in _BUILTIN:
        role = Role(
            id=new_id("role"),
            org_id=org.id,
            name=role_name,
            description=role_description,
            builtin=True,
            created_by=created_by,
        )
        permission = Permission(
            id=new_id("perm"),
            org_id=org.id,
            name=permission_name,
            description=permission_description,
            rules=rules,
            builtin=True,
            created_by=created_by,
        )
        db.session.add_all([role, permission])
        links.append(RolePermission(role_id=role.id, permission_id=permission.id))
    db.session.flush()
    db.session.add_all(links)
    db.session.flush()


# --- reading -----------------------------------------------------------------------------------------------------


def get_role(org: Organization, ref: str) -> Role | None:
    """The organization's role by id or name, or None."""
    return db.session.scalar(db.select(Role).where(Role.org_id == org.id, (Role.id == ref) | (Role.name == ref)))


def require_role(org: Organization, ref: str) -> Role:
    """Like ``get_role`` but raises ``NotFound``."""
    role = get_role(org, ref)
    if role is None:
        raise NotFound(f"role {ref!r} not found in organization {org.name!r}")
    return role


def list_roles(org: Organization) -> list[Role]:
    """The organization's roles by name."""
    return list(db.session.scalars(db.select(Role).where(Role.org_id == org.id).order_by(Role.name)))


def get_permission(org: Organization, ref: str) -> Permission | None:
    """The organization's permission by id or name, or None."""
    return db.session.scalar(
        db.select(Permission).where(Permission.org_id == org.id, (Permission.id == ref) | (Permission.name == ref))
    )


def require_permission(org: Organization, ref: str) -> Permission:
    """Like ``get_permission`` but raises ``NotFound``."""
    permission = get_permission(org, ref)
    if permission is None:
        raise NotFound(f"permission {ref!r} not found in organization {org.name!r}")
    return permission


def list_permissions(org: Organization) -> list[Permission]:
    """The organization's permissions by name."""
    return list(db.session.scalars(db.select(Permission).where(Permission.org_id == org.id).order_by(Permission.name)))


def permissions_by_role(roles: list[Role]) -> dict[str, list[Permission]]:
    """The permissions attached to each role (by role id), by name."""
    result: dict[str, list[Permission]] = {role.id: [] for role in roles}
    if not roles:
        return result
    rows = db.session.execute(
        db.select(RolePermission.role_id, Permission)
        .join(Permission, Permission.id == RolePermission.permission_id)
        .where(RolePermission.role_id.in_(list(result)))
        .order_by(Permission.name)
    ).all()
    for role_id, permission in rows:
        result[role_id].append(permission)
    return result


def roles_of_member(org: Organization, user: User) -> list[Role]:
    """The roles ``user`` holds in ``org``, by name."""
    return list(
        db.session.scalars(
            db.select(Role)
            .join(RoleAssignment, RoleAssignment.role_id == Role.id)
            .where(RoleAssignment.org_id == org.id, RoleAssignment.user_id == user.id, Role.org_id == org.id)
            .order_by(Role.name)
        )
    )


def roles_by_member(org: Organization) -> dict[str, list[Role]]:
    """Every member's roles in ``org`` (by user id; members without a role map to an empty list)."""
    result: dict[str, list[Role]] = defaultdict(list)
    for user_id in db.session.scalars(db.select(Membership.user_id).where(Membership.org_id == org.id)):
        result[user_id] = []
    rows = db.session.execute(
        db.select(RoleAssignment.user_id, Role)
        .join(Role, Role.id == RoleAssignment.role_id)
        .where(RoleAssignment.org_id == org.id, Role.org_id == org.id)
        .order_by(Role.name)
    ).all()
    for user_id, role in rows:
        result[user_id].append(role)
    return dict(result)


def grants_for_member(org_id: str, user_id: str) -> list[policy.Grant]:
    """The rules a member holds through their roles; raises ``ValueError`` for a malformed stored rule.

    Read once per request and organization by the access layer (``app.auth.access``), which answers from memory.
    """
    rows = db.session.execute(
        db.select(Role.name, Permission.name, Permission.rules)
        .select_from(RoleAssignment)
        .join(Role, Role.id == RoleAssignment.role_id)
        .join(RolePermission, RolePermission.role_id == Role.id)
        .join(Permission, Permission.id == RolePermission.permission_id)
        .where(
            RoleAssignment.org_id == org_id,
            RoleAssignment.user_id == user_id,
            Role.org_id == org_id,
            Permission.org_id == org_id,
        )
    ).all()
    return [
        policy.Grant(
            role=role_name, permission=permission_name, rules=tuple(policy.stored_rule(rule) for rule in (rules or []))
        )
        for role_name, permission_name, rules in rows
    ]


def count_role_holders(role: Role) -> int:
    """How many users hold ``role``."""
    return (
        db.session.scalar(
            db.select(db.func.count()).select_from(RoleAssignment).where(RoleAssignment.role_id == role.id)
        )
        or 0
    )


# --- changing ----------------------------------------------------------------------------------------------------


def create_role(
    org: Organization, name: str, actor: str, description: str = "", permission_refs: list[str] | None = None
) -> Role:
    """Create a role with the given permissions (ids or names of this organization); ``Conflict`` if the name exists."""
    check_name("role", name)
    permissions = [require_permission(org, ref) for ref in dict.fromkeys(permission_refs or [])]
    if get_role(org, name) is not None:
        raise Conflict(
            f"role {name!r} already exists in organization {org.name!r}; to add permissions to it, "
            "POST them to its /permissions"
        )
    role = Role(id=new_id("role"), org_id=org.id, name=name, description=description, builtin=False, created_by=actor)
    db.session.add(role)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"role {name!r} already exists in organization {org.name!r}") from None
    for permission in permissions:
        db.session.add(RolePermission(role_id=role.id, permission_id=permission.id))
    record_event(
        "role.create",
        "ok",
        actor,
        org_id=org.id,
        commit=False,
        role_id=role.id,
        role=name,
        permissions=[p.name for p in permissions],
    )
    _commit(f"role {name!r} already exists in organization {org.name!r}")
    return role


def delete_role(org: Organization, role: Role, actor: str) -> None:
    """Delete a custom role with its assignments; built-in roles raise ``Conflict``."""
    _same_org(org, role)
    if role.builtin:
        raise Conflict(f"role {role.name!r} is built in and cannot be deleted")
    holders = count_role_holders(role)
    db.session.execute(db.delete(RoleAssignment).where(RoleAssignment.role_id == role.id))
    db.session.execute(db.delete(RolePermission).where(RolePermission.role_id == role.id))
    db.session.delete(role)
    record_event(
        "role.delete", "ok", actor, org_id=org.id, commit=False, role_id=role.id, role=role.name, holders=holders
    )
    _commit()


def create_permission(org: Organization, name: str, rules: Any, actor: str, description: str = "") -> Permission:
    """Create a permission from validated rules; ``Conflict`` if the name exists, ``InvalidInput`` for bad rules."""
    check_name("permission", name)
    stored = policy.validate_rules(rules)
    if get_permission(org, name) is not None:
        raise Conflict(f"permission {name!r} already exists in organization {org.name!r}")
    permission = Permission(
        id=new_id("perm"),
        org_id=org.id,
        name=name,
        description=description,
        rules=stored,
        builtin=False,
        created_by=actor,
    )
    db.session.add(permission)
    record_event(
        "permission.create",
        "ok",
        actor,
        org_id=org.id,
        commit=False,
        permission_id=permission.id,
        permission=name,
        rules=stored,
    )
    _commit(f"permission {name!r} already exists in organization {org.name!r}")
    return permission


def delete_permission(org: Organization, permission: Permission, actor: str) -> None:
    """Delete a custom permission (detaching it from every role); built-in permissions raise ``Conflict``."""
    _same_org(org, permission)
    if permission.builtin:
        raise Conflict(f"permission {permission.name!r} is built in and cannot be deleted")
    db.session.execute(db.delete(RolePermission).where(RolePermission.permission_id == permission.id))
    db.session.delete(permission)
    record_event(
        "permission.delete",
        "ok",
        actor,
        org_id=org.id,
        commit=False,
        permission_id=permission.id,
        permission=permission.name,
    )
    _commit()


def attach_permission(org: Organization, role: Role, permission: Permission, actor: str) -> bool:
    """Attach ``permission`` to ``role`` (idempotent); returns whether it was newly attached."""
    _same_org(org, role)
    _same_org(org, permission)
    if _link(role, permission) is not None:
        return False
    db.session.add(RolePermission(role_id=role.id, permission_id=permission.id))
    record_event(
        "role.permission.attach", "ok", actor, org_id=org.id, commit=False, role=role.name, permission=permission.name
    )
    try:
        _commit()
    except Conflict:  # attached concurrently: the outcome the caller asked for
        return False
    return True


def detach_permission(org: Organization, role: Role, permission: Permission, actor: str) -> None:
    """Detach ``permission`` from ``role``; ``NotFound`` when not attached, ``Conflict`` for a built-in pair."""
    _same_org(org, role)
    _same_org(org, permission)
    link = _link(role, permission)
    if link is None:
        raise NotFound(f"permission {permission.name!r} is not attached to role {role.name!r}")
    if role.builtin and permission.builtin:
        raise Conflict(f"permission {permission.name!r} is what built-in role {role.name!r} is; it cannot be detached")
    db.session.delete(link)
    record_event(
        "role.permission.detach", "ok", actor, org_id=org.id, commit=False, role=role.name, permission=permission.name
    )
    _commit()


def assign_role(org: Organization, user: User, role: Role, actor: str) -> bool:
    """Give ``user`` the role (making them a member if needed); idempotent; returns whether it was new."""
    _same_org(org, role)
    _ensure_membership(org, user)
    existing = db.session.scalar(
        db.select(RoleAssignment.id).where(RoleAssignment.user_id == user.id, RoleAssignment.role_id == role.id)
    )
    if existing is not None:
        db.session.commit()
        return False
    db.session.add(RoleAssignment(org_id=org.id, user_id=user.id, role_id=role.id, created_by=actor))
    record_event("role.assign", "ok", actor, org_id=org.id, commit=False, subject=user.subject, role=role.name)
    try:
        _commit()
    except Conflict:  # assigned concurrently
        return False
    return True


def revoke_role(org: Organization, user: User, role: Role, actor: str) -> bool:
    """Take the role from ``user``; returns whether they had it. The last admin keeps it (``Conflict``)."""
    _same_org(org, role)
    assignment = db.session.scalar(
        db.select(RoleAssignment).where(RoleAssignment.user_id == user.id, RoleAssignment.role_id == role.id)
    )
    if assignment is None:
        return False
    if role.builtin and role.name == ADMIN_ROLE and count_role_holders(role) <= 1:
        raise Conflict(
            f"{user.subject!r} is the last admin of organization {org.name!r}; assign the admin role "
            "to someone else first"
        )
    db.session.delete(assignment)
    record_event("role.revoke", "ok", actor, org_id=org.id, commit=False, subject=user.subject, role=role.name)
    _commit()
    return True


def _ensure_membership(org: Organization, user: User) -> None:
    exists = db.session.scalar(
        db.select(Membership.id).where(Membership.org_id == org.id, Membership.user_id == user.id)
    )
    if exists is None:
        db.session.add(Membership(org_id=org.id, user_id=user.id))
        db.session.flush()


def _link(role: Role, permission: Permission) -> RolePermission | None:
    return db.session.scalar(
        db.select(RolePermission).where(
            RolePermission.role_id == role.id, RolePermission.permission_id == permission.id
        )
    )


def _same_org(org: Organization, thing: Role | Permission) -> None:
    # Defence in depth: handlers resolve roles within the caller's organization, but never mix organizations here.
    if thing.org_id != org.id:
        raise NotFound(f"{type(thing).__name__.lower()} {thing.id!r} not found in organization {org.name!r}")


def _commit(conflict_message: str = "the change conflicts with a concurrent one; try again") -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(conflict_message) from None
