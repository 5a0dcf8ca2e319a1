"""API tokens: shown once at creation, stored as SHA-256, revocable, optionally expiring and narrowed."""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from app.core.clock import utcnow
from app.core.errors import InvalidInput, NotFound
from app.core.ids import new_id
from app.core.ttl_cache import TtlCache
from app.extensions import db
from app.models import ApiToken, Organization, User
from app.repositories.audit import record_event
from app.repositories.names import check_name

TOKEN_PREFIX = "stm_"
SCOPES = ("full", "read-only", "outputs-only")
_ALPHABET = string.ascii_letters + string.digits
# Terraform sends the same token with every request: a verified token's principal is remembered this long per
# process (keyed by the hash, never the secret), so a revocation reaches every worker within VERIFIED_TTL_SECONDS.
VERIFIED_TTL_SECONDS = 10.0
verified_tokens: TtlCache[Any] = TtlCache(VERIFIED_TTL_SECONDS)
# last_used_at is refreshed at most this often, so reads do not turn into a database write per request.
LAST_USED_GRANULARITY = timedelta(minutes=5)
# Makes a token's secret from its id and expiry (naive UTC, or None).
Minter = Callable[[str, datetime | None], str]


def hash_token(secret: str) -> str:
    """The stored form of a token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    org: Organization,
    user: User | None,
    actor: str,
    *,
    scope: str = "full",
    expires_in: timedelta | None = None,
    workspace_name: str | None = None,
    description: str = "",
    expires_at: datetime | None = None,
    mint: Minter | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret (the only time the secret exists outside the client).

    ``expires_at`` (naive UTC) is an exact end, for tokens that must not outlive another; else ``expires_in``.
    ``mint`` makes the secret from the token's id and expiry (a signed JWT access token); by default it is random.
    Either way only its hash is stored, and it is verified by that hash.
    """
    if scope not in SCOPES:
        raise InvalidInput(f"unknown token scope {scope!r}; expected one of {', '.join(SCOPES)}")
    if workspace_name is not None:
        check_name("workspace", workspace_name)
    token_id = new_id("at")
    expiry = expires_at or (utcnow() + expires_in if expires_in else None)
    secret = mint(token_id, expiry) if mint else TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))
    token = ApiToken(
        id=token_id,
        token_hash=hash_token(secret),
        org_id=org.id,
        user_id=user.id if user else None,
        scope=scope,
        workspace_name=workspace_name,
        description=description,
        expires_at=expiry,
    )
    db.session.add(token)
    record_event(
        "token.create",
        "ok",
        actor,
        org_id=org.id,
        commit=False,
        token_id=token.id,
        scope=scope,
        user=user.subject if user else None,
        limited_to=workspace_name,
    )
    db.session.commit()
    return token, secret


def verify_token(secret: str) -> ApiToken | None:
    """The live token for ``secret`` (not revoked, not expired), or None."""
    token = db.session.scalar(db.select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    now = utcnow()
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        token.last_used_at = now
        db.session.commit()
    return token


def list_tokens(org: Organization) -> list[ApiToken]:
    """The organization's tokens, newest first (secrets are never stored, so never listed)."""
    return list(
        db.session.scalars(db.select(ApiToken).where(ApiToken.org_id == org.id).order_by(ApiToken.created_at.desc()))
    )


def get_token(token_id: str) -> ApiToken | None:
    """The token with this id (live or not), or None."""
    return db.session.get(ApiToken, token_id)


def list_user_tokens(user_id: str, org_id: str) -> list[ApiToken]:
    """The user's tokens in one organization that are not revoked, newest first."""
    return list(
        db.session.scalars(
            db.select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.org_id == org_id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.created_at.desc())
        )
    )


def revoke_token(token_id: str, actor: str) -> ApiToken:
    """Revoke a token by id; raises ``NotFound``."""
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id!r} not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record_event("token.revoke", "ok", actor, org_id=token.org_id, commit=False, token_id=token.id)
        db.session.commit()
        verified_tokens.clear()
    return token
