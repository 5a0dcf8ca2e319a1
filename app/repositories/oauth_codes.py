"""One-time authorization codes of ``terraform login``, stored hashed so any worker can redeem them, once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import CursorResult

from app.core.clock import utcnow
from app.extensions import db
from app.models import ApiToken, AuthorizationCode, Organization, User
from app.repositories.audit import record_event
from app.repositories.tokens import create_token, hash_token, revoke_token

# Terraform redeems the code the moment its loopback server receives it; a minute covers slow machines.
CODE_LIFETIME = timedelta(seconds=60)


@dataclass(frozen=True)
class Grant:
    """What a redeemed code was issued for."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    user: User
    org: Organization


class CodeRefused(Exception):
    """The code is unknown, expired or already used (the OAuth error ``invalid_grant``)."""


def issue_code(client_id: str, redirect_uri: str, code_challenge: str, user: User, org: Organization) -> str:
    """Store a new code for ``user`` in ``org`` and return it (the only copy of the plain code)."""
    code = secrets.token_urlsafe(32)
    now = utcnow()
    # Expired codes are useless; clearing them here keeps the table small without a scheduler.
    db.session.execute(db.delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - CODE_LIFETIME))
    db.session.add(
        AuthorizationCode(
            code_hash=hash_token(code),
            client_id=client_id,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            user_id=user.id,
            org_id=org.id,
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
    )
    db.session.commit()
    return code


def redeem_code(code: str) -> Grant:
    """Mark the code used and return its grant; ``CodeRefused`` when unknown, expired or used before.

    The conditional UPDATE is the single-use guarantee: of two racing requests exactly one changes the row. A
    code presented a second time revokes the token the first redemption bought (RFC 6749, section 4.1.2).
    """
    code_hash = hash_token(code)
    now = utcnow()
    result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        db.update(AuthorizationCode)
        .where(
            AuthorizationCode.code_hash == code_hash,
            AuthorizationCode.used_at.is_(None),
            AuthorizationCode.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    won = result.rowcount
    db.session.commit()
    row = db.session.get(AuthorizationCode, code_hash)
    if row is None:
        raise CodeRefused("unknown authorization code")
    if won != 1:
        if row.used_at is not None:
            _revoke_bought_token(row)
            raise CodeRefused("authorization code already used")
        raise CodeRefused("authorization code expired")
    user, org = db.session.get(User, row.user_id), db.session.get(Organization, row.org_id)
    if user is None or org is None:
        raise CodeRefused("the user or organization of this code no longer exists")
    return Grant(row.client_id, row.redirect_uri, row.code_challenge, user, org)


def token_for_grant(code: str, grant: Grant, lifetime: timedelta) -> tuple[ApiToken, str]:
    """Create the user's API token for a redeemed code and attach it to the code (for reuse revocation).

    ``CodeRefused`` when the code was presented again before the token was attached: the token is revoked at once.
    """
    token, secret = create_token(
        grant.org, grant.user, grant.user.subject, expires_in=lifetime, description="terraform login"
    )
    if _attach(hash_token(code), token.id) != 1:
        revoke_token(token.id, "oauth-code-reuse")
        raise CodeRefused("authorization code already used")
    return token, secret


# Marks a code presented again before its token was attached; the redemption then revokes what it just made.
_REUSED = "reused"


def _attach(code_hash: str, token_id: str) -> int:
    """Set the code's ``token_id`` if nothing is set yet; returns the number of rows changed (0 or 1)."""
    result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        db.update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.token_id.is_(None))
        .values(token_id=token_id)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


def _revoke_bought_token(row: AuthorizationCode) -> None:
    record_event("oauth.code_reuse", "refused", f"client:{row.client_id}", org_id=row.org_id, commit=False)
    db.session.commit()
    # Either the token is attached (revoke it) or its redemption is still running (mark the code, so it revokes).
    if _attach(row.code_hash, _REUSED) == 1:
        return
    db.session.refresh(row)
    if row.token_id not in (None, _REUSED):
        revoke_token(row.token_id, "oauth-code-reuse")
