"""Organizations and their members."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.ids import new_id
from app.extensions import db
from app.models import Membership, Organization, Role, RoleAssignment, User
from app.repositories import rbac
from app.repositories.audit import record_event
from app.repositories.names import check_name, is_valid_name, looks_like_id
from app.repositories.rbac import ADMIN_ROLE, DEFAULT_ROLE, add_builtin_roles


def get_org_by_name(name: str) -> Organization | None:
    """The organization with this URL name, or None."""
    return db.session.scalar(db.select(Organization).where(Organization.name == name))


def get_org(ref: str) -> Organization | None:
    """The organization ``ref`` names, or None. The order, documented and fixed: an id-shaped ``ref`` is only an
    id; otherwise a name, then an external id.

    Names and external ids are kept apart when they are written (``check_refs_free``), so at most one organization
    answers to a reference; the order only settles rows written before that rule existed.
    """
    if looks_like_id(ref, "org"):
        return db.session.get(Organization, ref)
    found = list(
        db.session.scalars(
            db.select(Organization).where((Organization.name == ref) | (Organization.external_org_id == ref)).limit(2)
        )
    )
    by_name = [org for org in found if org.name == ref]
    return (by_name or found or [None])[0]


def _answering_to(ref: str) -> Organization | None:
    """Any organization whose id, name or external id is ``ref``."""
    return db.session.scalar(
        db.select(Organization)
        .where((Organization.name == ref) | (Organization.id == ref) | (Organization.external_org_id == ref))
        .limit(1)
    )


def check_refs_free(name: str | None, external_org_id: str | None, org_id: str | None = None) -> None:
    """``Conflict`` when ``name`` or ``external_org_id`` is already how another organization is named.

    Any of an organization's three references (id, name, external id) may appear where another's is expected
    (``X-Org-ID``, URLs), so each must be free among all three of every other organization.
    """
    for kind, ref in (("name", name), ("external id", external_org_id)):
        if not ref:
            continue
        if looks_like_id(ref):
            raise InvalidInput(f"organization {kind} {ref!r} has the shape of an id; choose another")
        clash = _answering_to(ref)
        if clash is not None and clash.id != org_id:
            raise Conflict(
                f"organization {kind} {ref!r} already exists: another organization has it as its name, id or "
                "external id"
            )


def require_org(ref: str) -> Organization:
    """Like ``get_org`` but raises ``NotFound``."""
    org = get_org(ref)
    if org is None:
        raise NotFound(f"organization {ref!r} not found")
    return org


def list_orgs() -> list[Organization]:
    """Every organization by name."""
    return list(db.session.scalars(db.select(Organization).order_by(Organization.name)))


def create_org(
    name: str, display_name: str = "", external_org_id: str | None = None, created_by: str | None = None
) -> Organization:
    """Create an organization with its built-in roles (audited as ``org.create``); raises ``Conflict`` when the name
    or external id is taken."""
    check_refs_free(check_name("organization", name), external_org_id)
    org = Organization(
        id=new_id("org"),
        name=name,
        display_name=display_name or name,
        external_org_id=external_org_id,
        created_by=created_by,
    )
    try:
        add_builtin_roles(org, created_by)
        record_event("org.create", "ok", created_by or "", org_id=org.id, commit=False, name=org.name)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"organization {name!r} already exists") from None
    return org


def is_member(org_id: str, user_id: str) -> bool:
    """True when the user belongs to the organization."""
    return (
        db.session.scalar(db.select(Membership.id).where(Membership.org_id == org_id, Membership.user_id == user_id))
        is not None
    )


def add_member(org: Organization, user: User, actor: str) -> bool:
    """Make ``user`` a member of ``org`` (idempotent; a new membership is audited as ``member.add``).

    Returns whether the membership is new (False also when a concurrent request added it first).
    """
    if is_member(org.id, user.id):
        return False
    db.session.add(Membership(org_id=org.id, user_id=user.id))
    record_event("member.add", "ok", actor, org_id=org.id, commit=False, subject=user.subject)
    try:
        db.session.commit()
    except IntegrityError:  # joined concurrently
        db.session.rollback()
        return False
    return True


# --- provisioning from an identity provider (the web UI, ``make sync-org``) -------------------------------------

_SLUG_JUNK = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_ATTEMPTS = 5


def get_org_by_external_id(external_org_id: str) -> Organization | None:
    """The organization with this identity-provider id, or None."""
    return db.session.scalar(db.select(Organization).where(Organization.external_org_id == external_org_id))


def derive_org_name(wanted: str) -> str:
    """A free, valid URL name for ``wanted``: itself when valid and free, else a slug with a numeric suffix.

    A name counts as taken when it equals any organization's name, id or external id, because ``X-Org-ID`` and
    the APIs resolve an organization by any of the three.
    """
    base = wanted.strip() if is_valid_name(wanted.strip()) else _slugify(wanted)
    if is_valid_name(base) and _answering_to(base) is None:
        return base
    for number in range(2, 1000):
        suffix = f"-{number}"
        candidate = base[: 90 - len(suffix)] + suffix
        if _answering_to(candidate) is None:
            return candidate
    suffix = "-" + new_id("x")[2:10].lower()
    return base[: 90 - len(suffix)] + suffix


def _slugify(text: str) -> str:
    slug = _SLUG_JUNK.sub("-", text.strip().lower()).strip("-._")
    slug = re.sub(r"-{2,}", "-", slug)[:90].strip("-._")
    return slug or "org"


def provision_org(
    wanted_name: str, display_name: str, external_org_id: str | None, creator: User | None, actor: str
) -> Organization:
    """Create an organization under a derived unique name, with built-in roles and ``creator`` as its admin.

    Raises ``Conflict`` when ``external_org_id`` already belongs to an organization.
    """
    for _ in range(_NAME_ATTEMPTS):
        if external_org_id and get_org_by_external_id(external_org_id) is not None:
            raise Conflict(f"an organization with external id {external_org_id!r} already exists")
        check_refs_free(None, external_org_id)
        org = Organization(
            id=new_id("org"),
            name=derive_org_name(wanted_name),
            display_name=display_name or wanted_name,
            external_org_id=external_org_id,
            created_by=actor,
        )
        try:
            add_builtin_roles(org, actor)
            if creator is not None:
                _add_admin(org, creator, actor)
            record_event(
                "org.create",
                "ok",
                actor,
                org_id=org.id,
                commit=False,
                name=org.name,
                display_name=org.display_name,
                external_org_id=external_org_id,
            )
            db.session.commit()
            return org
        except IntegrityError:
            db.session.rollback()  # a concurrent request took the name or the external id: look again
    raise Conflict(f"could not find a free name for organization {wanted_name!r}; try again")


def _add_admin(org: Organization, user: User, actor: str) -> None:
    db.session.add(Membership(org_id=org.id, user_id=user.id))
    admin = db.session.scalar(db.select(Role).where(Role.org_id == org.id, Role.name == ADMIN_ROLE))
    assert admin is not None
    db.session.add(RoleAssignment(org_id=org.id, user_id=user.id, role_id=admin.id, created_by=actor))


def sync_org(
    name: str, display_name: str, external_org_id: str, creator: User | None, actor: str
) -> tuple[Organization, bool]:
    """The organization keyed by ``external_org_id``, created when missing (returns it and whether it was created).

    Idempotent: an existing organization keeps its URL name; only a changed display name is updated.
    """
    existing = get_org_by_external_id(external_org_id)
    if existing is None:
        try:
            return provision_org(name, display_name, external_org_id, creator, actor), True
        except Conflict:
            existing = get_org_by_external_id(external_org_id)  # created concurrently by another sync
            if existing is None:
                raise
    if display_name and existing.display_name != display_name:
        previous = existing.display_name
        existing.display_name = display_name
        record_event(
            "org.update",
            "ok",
            actor,
            org_id=existing.id,
            commit=False,
            display_name=display_name,
            previous_display_name=previous,
        )
        db.session.commit()
    return existing, False


def list_member_orgs(user_id: str) -> list[Organization]:
    """The organizations the user belongs to, by name."""
    return list(
        db.session.scalars(
            db.select(Organization)
            .join(Membership, Membership.org_id == Organization.id)
            .where(Membership.user_id == user_id)
            .order_by(Organization.name)
        )
    )


def list_members(org: Organization) -> list[User]:
    """The organization's members by subject."""
    return list(
        db.session.scalars(
            db.select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org.id)
            .order_by(User.subject)
        )
    )


def get_member(org: Organization, subject: str) -> User | None:
    """The member with this subject, or None (users of other organizations are never found)."""
    return db.session.scalar(
        db.select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org.id, User.subject == subject)
    )


def find_members_by_email(org: Organization, email: str) -> list[User]:
    """The members with this email (case-insensitive)."""
    return list(
        db.session.scalars(
            db.select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org.id, db.func.lower(User.email) == email.strip().lower())
        )
    )


def join_org(org: Organization, user: User, actor: str, role_ref: str | None = None) -> tuple[bool, list[str]]:
    """Make ``user`` a member (idempotent); a new member without ``role_ref`` gets the ``default`` role.

    Returns whether the membership is new and the names of the roles given now. ``role_ref`` (id or name) is
    assigned even to existing members; ``NotFound`` when the role does not exist.
    """
    role = rbac.require_role(org, role_ref) if role_ref else None
    created = add_member(org, user, actor)
    given: list[str] = []
    if role is None and created and not rbac.roles_of_member(org, user):
        role = rbac.require_role(org, DEFAULT_ROLE)
    if role is not None and rbac.assign_role(org, user, role, actor):
        given.append(role.name)
    return created, given


def rename_org(org: Organization, name: str, actor: str) -> Organization:
    """Give the organization a new URL name (audited); ``Conflict`` when another organization answers to it."""
    if name == org.name:
        return org
    check_refs_free(check_name("organization", name), None, org.id)
    previous, org.name = org.name, name
    record_event("org.rename", "ok", actor, org_id=org.id, commit=False, name=name, previous_name=previous)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"organization {name!r} already exists") from None
    return org


def delete_org(org: Organization, actor: str) -> None:
    """Delete an organization with its members, roles and tokens; ``Conflict`` while it still has workspaces.

    Workspaces must be deleted first (each through the repositories that also remove their state objects), so
    deleting an organization never strands stored states.
    """
    from app.models import Workspace

    remaining = db.session.scalar(db.select(db.func.count()).where(Workspace.org_id == org.id)) or 0
    if remaining:
        raise Conflict(f"organization {org.name!r} still has {remaining} workspace(s); delete them first")
    record_event("org.delete", "ok", actor, org_id=org.id, commit=False, name=org.name)
    db.session.execute(db.delete(Organization).where(Organization.id == org.id))
    db.session.commit()
