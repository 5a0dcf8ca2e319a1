"""Users, identified by ``subject`` (from the IdP, a static user name, or the CLI).

A user's email decides role assignments made by email, so it is never taken from a self-service call: it is set
when the user is first seen and changed only by ``set_email``, which callers use for what the identity provider
says (the web UI's sync, OIDC claims) or what an operator or administrator decides.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Membership, User
from app.repositories.audit import record_event


def get_user_by_subject(subject: str) -> User | None:
    """The user with this subject, or None."""
    return db.session.scalar(db.select(User).where(User.subject == subject))


def ensure_user(subject: str, email: str | None = None) -> User:
    """The user with this subject, created (with ``email``) if missing; an existing user's email is left alone."""
    user = get_user_by_subject(subject)
    if user is not None:
        return user
    user = User(subject=subject, email=email)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # created concurrently by another request
        db.session.rollback()
        user = get_user_by_subject(subject)
        assert user is not None
    return user


def set_email(user: User, email: str | None, actor: str, source: str, org_id: str | None = None) -> bool:
    """Change the stored email (audited with ``source``, in ``org_id``'s log); returns whether it changed.

    Empty values are ignored.
    """
    if not email or user.email == email:
        return False
    previous, user.email = user.email, email
    record_event(
        "user.email", "ok", actor, org_id=org_id, commit=False, subject=user.subject, source=source, previous=previous
    )
    db.session.commit()
    return True


def member_org_ids(user: User) -> set[str]:
    """The ids of the organizations the user belongs to."""
    return set(db.session.scalars(db.select(Membership.org_id).where(Membership.user_id == user.id)))
