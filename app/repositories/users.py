"""Users, identified by ``subject`` (from the IdP, a static user name, or the CLI)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import User


def get_user_by_subject(subject: str) -> User | None:
    """The user with this subject, or None."""
    return db.session.scalar(db.select(User).where(User.subject == subject))


def ensure_user(subject: str, email: str | None = None) -> User:
    """The user with this subject, created if missing; a given email updates the stored one."""
    user = get_user_by_subject(subject)
    if user is None:
        user = User(subject=subject, email=email)
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:  # created concurrently by another request
            db.session.rollback()
            user = get_user_by_subject(subject)
            assert user is not None
    elif email and user.email != email:
        user.email = email
        db.session.commit()
    return user
