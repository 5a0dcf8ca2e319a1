"""Refresh tokens of ``/v1/auth``: stored hashed, single use, rotated on every refresh, replay revokes the family.

A family begins with one id-token exchange. Every refresh spends one refresh token (one conditional UPDATE, so of
two racing requests exactly one wins) and issues the next one of the same family with a new access token. A spent
refresh token presented again means two parties hold it (RFC 9700, section 4.14.2): the whole family is revoked,
refresh tokens and the access tokens issued from them.

Access tokens are JWTs (RFC 9068) signed by the persisted signing key (``app.repositories.signing_keys``), so other
services can verify them with ``/oidc/jwks.json``; Statesman itself checks them by their hash like every API token,
so a revoked one is refused at once by the worker that revoked it and by every other within
``VERIFIED_TTL_SECONDS``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import CursorResult

from app.core.clock import utcnow
from app.core.ids import new_id
from app.drivers.sql import retry_deadlocks
from app.extensions import db
from app.models import ApiToken, Organization, RefreshToken, User
from app.repositories.audit import record_event
from app.repositories.orgs import is_member
from app.repositories.signing_keys import sign_access_token
from app.repositories.tokens import create_token, hash_token, revoke_token, verified_tokens

REFRESH_PREFIX = "stmr_"
# A refresh token unused for this long is dead; every refresh starts the period again for the new one.
REFRESH_LIFETIME = timedelta(days=30)
EXCHANGE_DESCRIPTION = "token exchange"
ACCESS_TOKEN_AUDIENCE = "statesman"
EXCHANGE_CLIENT = "statesman-exchange"


@dataclass(frozen=True)
class IssuedTokens:
    """An access token (an API token's secret) and the refresh token that follows it, both shown this once."""

    access_token: ApiToken
    access_secret: str
    refresh_token: str


class RefreshRefused(Exception):
    """The refresh token is unknown, expired, revoked or used before (the OAuth error ``invalid_grant``)."""


def start_family(org: Organization, user: User, access_lifetime: timedelta, issuer: str) -> IssuedTokens:
    """The first access and refresh token of a new family, for ``user`` in ``org``; ``issuer`` is our public URL."""
    record_event("token.exchange", "ok", user.subject, org_id=org.id, commit=False)
    return _issue(new_id("rtf"), org, user, access_lifetime, issuer)


def refresh(secret: str, access_lifetime: timedelta, issuer: str) -> IssuedTokens:
    """Spend ``secret`` and return the family's next tokens; ``RefreshRefused`` otherwise.

    A replayed token revokes its family before it is refused, so whoever holds the newer tokens loses them too.
    """
    token_hash = hash_token(secret)
    won = retry_deadlocks(db.session, lambda: _spend(token_hash))
    row = db.session.get(RefreshToken, token_hash)
    if row is None:
        raise RefreshRefused("unknown refresh token")
    if won != 1:
        if row.used_at is not None:
            revoke_family(row.family_id, "refresh-token-reuse", row.org_id)
            raise RefreshRefused("refresh token already used; every token of its sign-in is revoked")
        if row.revoked_at is not None:
            raise RefreshRefused("refresh token revoked")
        raise RefreshRefused("refresh token expired")
    user, org = db.session.get(User, row.user_id), db.session.get(Organization, row.org_id)
    if user is None or org is None or not is_member(org.id, user.id):
        # Leaving the organization ends the sign-in, not only the next exchange.
        revoke_family(row.family_id, "membership-ended", row.org_id)
        raise RefreshRefused("the user is no longer a member of the organization of this refresh token")
    issued = _issue(row.family_id, org, user, access_lifetime, issuer)
    if _family_revoked(row.family_id):
        # A replay revoked the family between our UPDATE and our INSERT: what we just made must die with it.
        revoke_family(row.family_id, "refresh-token-reuse", row.org_id)
        raise RefreshRefused("refresh token already used; every token of its sign-in is revoked")
    return issued


def _spend(token_hash: str) -> int:
    now = utcnow()
    result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        db.update(RefreshToken)
        .where(
            RefreshToken.token_hash == token_hash,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


def _issue(family_id: str, org: Organization, user: User, access_lifetime: timedelta, issuer: str) -> IssuedTokens:
    def mint(token_id: str, expires_at: datetime | None) -> str:
        assert expires_at is not None
        now = utcnow()
        return sign_access_token(
            {
                "iss": issuer,
                "sub": user.subject,
                "aud": ACCESS_TOKEN_AUDIENCE,
                "iat": _epoch(now),
                "nbf": _epoch(now),
                "exp": _epoch(expires_at),
                "jti": token_id,
                "client_id": EXCHANGE_CLIENT,
                "org": org.name,
                "org_id": org.id,
                "scope": "full",
                **({"email": user.email} if user.email else {}),
            }
        )

    access, access_secret = create_token(
        org, user, user.subject, expires_in=access_lifetime, description=EXCHANGE_DESCRIPTION, mint=mint
    )
    secret = REFRESH_PREFIX + secrets.token_urlsafe(32)
    retry_deadlocks(db.session, lambda: _store(secret, family_id, user, org, access.id))
    # Expired refresh tokens are useless; clearing them keeps the table small without a scheduler. Its range
    # lock is what collides with concurrent inserts on InnoDB, so it runs in a transaction of its own.
    retry_deadlocks(db.session, _delete_expired)
    return IssuedTokens(access, access_secret, secret)


def _epoch(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def _store(secret: str, family_id: str, user: User, org: Organization, access_token_id: str) -> None:
    now = utcnow()
    db.session.add(
        RefreshToken(
            token_hash=hash_token(secret),
            family_id=family_id,
            user_id=user.id,
            org_id=org.id,
            access_token_id=access_token_id,
            created_at=now,
            expires_at=now + REFRESH_LIFETIME,
        )
    )
    db.session.commit()


def _delete_expired() -> None:
    db.session.execute(db.delete(RefreshToken).where(RefreshToken.expires_at < utcnow() - REFRESH_LIFETIME))
    db.session.commit()


def _revoke_rows(family_id: str) -> None:
    db.session.execute(
        db.update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _family_revoked(family_id: str) -> bool:
    found = db.session.scalar(
        db.select(RefreshToken.token_hash)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_not(None))
        .limit(1)
    )
    return found is not None


def revoke_family(family_id: str, actor: str, org_id: str | None = None) -> int:
    """Revoke every refresh token of the family and the access tokens issued with them; returns how many access
    tokens were still live. This worker forgets its verified tokens at once; others within VERIFIED_TTL_SECONDS."""
    retry_deadlocks(db.session, lambda: _revoke_rows(family_id))
    access_ids = list(
        db.session.scalars(db.select(RefreshToken.access_token_id).where(RefreshToken.family_id == family_id))
    )
    live = list(
        db.session.scalars(db.select(ApiToken.id).where(ApiToken.id.in_(access_ids), ApiToken.revoked_at.is_(None)))
    )
    for token_id in live:
        revoke_token(token_id, actor)
    record_event(
        "token.family_revoke", "ok", actor, org_id=org_id, commit=False, family=family_id, access_tokens=len(live)
    )
    db.session.commit()
    # revoke_token clears the cache only when it changed a row; a concurrent revoker may have changed them all.
    verified_tokens.clear()
    return len(live)
