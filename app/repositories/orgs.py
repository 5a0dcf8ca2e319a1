"""Organizations and their members."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from app.errors import Conflict, NotFound
from app.extensions import db
from app.models import Membership, Organization, User
from app.repositories.names import check_name


def get_org_by_name(name: str) -> Organization | None:
    """The organization with this URL name, or None."""
    return db.session.scalar(db.select(Organization).where(Organization.name == name))


def get_org(ref: str) -> Organization | None:
    """The organization by name, id or external id, or None."""
    return db.session.scalar(
        db.select(Organization).where(
            (Organization.name == ref) | (Organization.id == ref) | (Organization.external_org_id == ref)
        )
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


def create_org(name: str, display_name: str = "", external_org_id: str | None = None,
               created_by: str | None = None) -> Organization:
    """Create an organization; raises ``Conflict`` when the name or external id is taken."""
    org = Organization(name=check_name("organization", name), display_name=display_name or name,
                       external_org_id=external_org_id, created_by=created_by)
    db.session.add(org)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"organization {name!r} already exists") from None
    return org


def list_member_org_ids(user_id: str) -> set[str]:
    """Ids of the organizations the user belongs to."""
    return set(db.session.scalars(db.select(Membership.org_id).where(Membership.user_id == user_id)))


def is_member(org_id: str, user_id: str) -> bool:
    """True when the user belongs to the organization."""
    return db.session.scalar(
        db.select(Membership.id).where(Membership.org_id == org_id, Membership.user_id == user_id)
    ) is not None


def add_member(org: Organization, user: User) -> Membership:
    """Make ``user`` a member of ``org`` (idempotent)."""
    existing = db.session.scalar(
        db.select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id)
    )
    if existing:
        return existing
    membership = Membership(org_id=org.id, user_id=user.id)
    db.session.add(membership)
    db.session.commit()
    return membership
