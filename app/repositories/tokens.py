"""API tokens: shown once at creation, stored as SHA-256, revocable, optionally expiring and narrowed.

Four kinds: ``user`` (a person's), ``service`` (organization-wide, made by an operator with ``flask tokens
create``), ``organization`` (the TFE API's one organization token) and ``agent`` (authenticates Statesman agents
only, optionally limited to one agent pool). Only user tokens have a user.
"""

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
from app.models import AgentPool, ApiToken, Organization, User
from app.repositories.audit import record_event
from app.repositories.names import check_name

TOKEN_PREFIX = "stm_"
SCOPES = ("full", "read-only", "outputs-only")
KINDS = ("user", "service", "organization", "agent")
# The scope every agent token carries: no permission rule knows it, so anything but the agent API refuses it.
AGENT_SCOPE = "agent"
_ALPHABET = string.ascii_letters + string.digits
# Terraform sends the same token with every request: a verified token's principal is remembered this long per
# process (keyed by the hash, never the secret), so a revocation reaches every worker within VERIFIED_TTL_SECONDS.
VERIFIED_TTL_SECONDS = 10.0
verified_tokens: TtlCache[Any] = TtlCache(VERIFIED_TTL_SECONDS)
# last_used_at is refreshed at most this often, so reads do not turn into a database write per request.
LAST_USED_GRANULARITY = timedelta(minutes=5)
# Makes a token's secret from its id and expiry (naive UTC, or None).
Minter = Callable[[str, datetime | None], str]


def random_secret() -> str:
    """A new opaque token secret."""
    return TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def hash_token(secret: str) -> str:
    """The stored form of a token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    org: Organization,
    user: User | None,
    actor: str,
    *,
    kind: str | None = None,
    agent_pool: AgentPool | None = None,
    scope: str = "full",
    expires_in: timedelta | None = None,
    workspace_name: str | None = None,
    description: str = "",
    expires_at: datetime | None = None,
    mint: Minter | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret (the only time the secret exists outside the client).

    ``kind`` defaults to ``user`` with a user and ``service`` without. ``expires_at`` (naive UTC) is an exact end,
    for tokens that must not outlive another; else ``expires_in``. ``mint`` makes the secret from the token's id
    and expiry (a signed JWT access token); by default it is random. Either way only its hash is stored, and it is
    verified by that hash. Raises ``InvalidInput``.
    """
    token, secret = _new_token(
        org,
        user,
        actor,
        kind=kind or ("user" if user is not None else "service"),
        agent_pool=agent_pool,
        scope=scope,
        workspace_name=workspace_name,
        description=description,
        expires_at=expires_at or (utcnow() + expires_in if expires_in else None),
        mint=mint,
    )
    db.session.commit()
    return token, secret


def _new_token(
    org: Organization,
    user: User | None,
    actor: str,
    *,
    kind: str,
    agent_pool: AgentPool | None,
    scope: str,
    workspace_name: str | None,
    description: str,
    expires_at: datetime | None,
    mint: Minter | None = None,
) -> tuple[ApiToken, str]:
    """Add a token and its audit event to the session, uncommitted."""
    _check_kind(org, user, kind, agent_pool, scope, workspace_name)
    if kind == "agent":
        scope = AGENT_SCOPE
    elif scope not in SCOPES:
        raise InvalidInput(f"unknown token scope {scope!r}; expected one of {', '.join(SCOPES)}")
    if workspace_name is not None:
        check_name("workspace", workspace_name)
    token_id = new_id("at")
    secret = (
        mint(token_id, expires_at) if mint else TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))
    )
    token = ApiToken(
        id=token_id,
        token_hash=hash_token(secret),
        org_id=org.id,
        user_id=user.id if user else None,
        kind=kind,
        agent_pool_id=agent_pool.id if agent_pool else None,
        scope=scope,
        workspace_name=workspace_name,
        description=description,
        expires_at=expires_at,
    )
    db.session.add(token)
    record_event(
        "token.create",
        "ok",
        actor,
        org_id=org.id,
        commit=False,
        token_id=token.id,
        kind=kind,
        scope=scope,
        user=user.subject if user else None,
        limited_to=workspace_name,
        agent_pool=agent_pool.id if agent_pool else None,
    )
    return token, secret


def _check_kind(
    org: Organization,
    user: User | None,
    kind: str,
    agent_pool: AgentPool | None,
    scope: str,
    workspace_name: str | None,
) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"unknown token kind {kind!r}; expected one of {', '.join(KINDS)}")
    if (kind == "user") != (user is not None):
        raise InvalidInput("user tokens need a user; service, organization and agent tokens have none")
    if agent_pool is not None and (kind != "agent" or agent_pool.org_id != org.id):
        raise InvalidInput("only an agent token may name an agent pool, and only one of its own organization")
    if kind == "agent" and (scope not in ("full", AGENT_SCOPE) or workspace_name is not None):
        raise InvalidInput("agent tokens have no scope or workspace limit: they authenticate agents only")


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
        revoke_tokens([token], actor)
        db.session.commit()
        forget_verified_tokens()
    return token


def revoke_tokens(found: list[ApiToken], actor: str) -> None:
    """Mark live tokens revoked with an audit event each (uncommitted: the caller's transaction decides)."""
    now = utcnow()
    for token in found:
        if token.revoked_at is None:
            token.revoked_at = now
            record_event("token.revoke", "ok", actor, org_id=token.org_id, commit=False, token_id=token.id)


def forget_verified_tokens() -> None:
    """Drop this process's verified-token cache, so a revocation that just committed applies here at once."""
    verified_tokens.clear()


def get_org_token(org: Organization) -> ApiToken | None:
    """The organization token of ``org`` (not revoked; possibly expired), or None."""
    return db.session.scalar(_live_org_tokens(org).order_by(ApiToken.created_at.desc()).limit(1))


def regenerate_org_token(org: Organization, actor: str, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Replace the organization token of ``org`` with a new one, in one transaction; returns it with its secret.

    The organization row is locked first, so two concurrent regenerations leave one live token.
    """
    db.session.execute(db.select(Organization.id).where(Organization.id == org.id).with_for_update())
    revoke_tokens(list(db.session.scalars(_live_org_tokens(org))), actor)
    token, secret = _new_token(
        org,
        None,
        actor,
        kind="organization",
        agent_pool=None,
        scope="full",
        workspace_name=None,
        description="organization token",
        expires_at=expires_at,
    )
    db.session.commit()
    forget_verified_tokens()
    return token, secret


def revoke_org_token(org: Organization, actor: str) -> ApiToken:
    """Revoke the organization token of ``org``; raises ``NotFound`` when it has none."""
    found = list(db.session.scalars(_live_org_tokens(org)))
    if not found:
        raise NotFound(f"organization {org.name!r} has no organization token")
    revoke_tokens(found, actor)
    db.session.commit()
    forget_verified_tokens()
    return found[0]


def _live_org_tokens(org: Organization) -> Any:
    return db.select(ApiToken).where(
        ApiToken.org_id == org.id, ApiToken.kind == "organization", ApiToken.revoked_at.is_(None)
    )


def list_agent_tokens(org: Organization, pool: AgentPool | None = None) -> list[ApiToken]:
    """The organization's agent tokens that are not revoked (only ``pool``'s when given), newest first."""
    query = db.select(ApiToken).where(
        ApiToken.org_id == org.id, ApiToken.kind == "agent", ApiToken.revoked_at.is_(None)
    )
    if pool is not None:
        query = query.where(ApiToken.agent_pool_id == pool.id)
    return list(db.session.scalars(query.order_by(ApiToken.created_at.desc())))
