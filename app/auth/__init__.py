"""Authentication: every API turns its credentials into a ``Principal`` here."""

from __future__ import annotations

import base64
import binascii

from app.auth.basic import burn_password_check, check_password, find_static_user
from app.auth.oidc_jwt import looks_like_jwt
from app.auth.permissions import AGENT_API_ONLY, AGENT_ONLY
from app.auth.principal import LOCAL_ADMIN, Principal
from app.core.clock import utcnow
from app.core.errors import Forbidden, Unauthenticated
from app.extensions import config, jwt_verifier
from app.models import ApiToken
from app.repositories.orgs import get_org_by_name
from app.repositories.signing_keys import is_access_token_header
from app.repositories.tokens import hash_token, verified_tokens, verify_token

# One answer for a wrong password, an unknown static user and a bad token, so a caller learns nothing about which
# names exist.
BAD_CREDENTIALS = "invalid credentials: wrong username or password, or an invalid, expired or revoked API token"


def authenticate(authorization: str | None) -> Principal:
    """The caller behind an ``Authorization`` header (Bearer token, or Basic with a token or static user)."""
    if config().auth_disabled:
        return LOCAL_ADMIN
    if not authorization:
        raise Unauthenticated("authentication required: send an API token")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        secret = value.strip()
        if looks_like_jwt(secret) and jwt_verifier() is not None:
            if not is_access_token_header(secret):
                return _from_jwt(secret)
            try:
                return _from_token(secret)  # one of the access tokens /v1/auth issued: known by its hash
            except Unauthenticated:
                return _from_jwt(secret)  # an identity provider's RFC 9068 access token looks the same
        return _from_token(secret)
    if scheme.lower() == "basic":
        user, password = _decode_basic(value)
        return _from_basic(user, password)
    raise Unauthenticated("unsupported authorization scheme: use Bearer or Basic")


def authenticate_agent(authorization: str | None) -> Principal:
    """The agent behind an ``Authorization`` header: an agent token, else ``Forbidden`` (``Unauthenticated`` for a
    missing or bad one).

    Also while authentication is disabled: an agent's jobs are those of its token's organization and pool, so the
    token is what names them, and the local admin has none.
    """
    if config().auth_disabled:
        scheme, _, secret = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("the agent API needs an agent token (Authorization: Bearer ...)")
        principal = _from_token(secret.strip())
    else:
        principal = authenticate(authorization)
    if principal.kind != "agent":
        raise Forbidden(AGENT_API_ONLY)
    return principal


def _decode_basic(value: str) -> tuple[str, str]:
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthenticated("malformed Basic credentials") from None
    if not sep or not password:
        raise Unauthenticated("Basic credentials need a password (an API token)")
    return user, password


def _from_basic(user: str, password: str) -> Principal:
    settings = config()
    if user == "jwt":
        if jwt_verifier() is None:
            raise Unauthenticated("JWT authentication is not configured on this server (AUTH_JWT_OIDC_ISSUER_URL)")
        return _from_jwt(password)
    if not settings.auth_basic_enabled:
        return _from_token(password)
    stored_hash = find_static_user(settings.auth_basic_users, user)
    if stored_hash is not None:
        if check_password(user, password, stored_hash):
            return Principal(subject=user, kind="static", superuser=True)
        raise Unauthenticated(BAD_CREDENTIALS)
    try:
        return _from_token(password)
    except Unauthenticated:
        burn_password_check(password)  # an unknown name costs what a wrong password costs
        raise Unauthenticated(BAD_CREDENTIALS) from None


def _from_jwt(token: str) -> Principal:
    verifier = jwt_verifier()
    assert verifier is not None
    grant = verifier.verify(token)
    org = get_org_by_name(grant.org_name)
    if org is None:
        raise Unauthenticated(f"JWT grants organization {grant.org_name!r}, which does not exist")
    return Principal(
        subject=grant.subject, kind="jwt", org_id=org.id, workspace_name=grant.workspace_name, email=grant.email
    )


def _from_token(secret: str) -> Principal:
    token_hash = hash_token(secret)
    principal = verified_tokens.get(token_hash)
    if principal is not None:
        return principal
    token = verify_token(secret)
    if token is None:
        raise Unauthenticated("invalid, expired or revoked API token")
    principal = principal_for_token(token)
    remaining = (token.expires_at - utcnow()).total_seconds() if token.expires_at else None
    verified_tokens.put(token_hash, principal, remaining)
    return principal


def principal_for_token(token: ApiToken) -> Principal:
    """The principal an API token stands for (kind "agent" for an agent token, else "token")."""
    user = token.user
    agent = token.kind == "agent"
    return Principal(
        subject=user.subject if user else f"{'agent' if agent else 'token'}:{token.id}",
        kind="agent" if agent else "token",
        user_id=user.id if user else None,
        org_id=token.org_id,
        scope=token.scope,
        workspace_name=token.workspace_name,
        email=user.email if user else None,
        token_id=token.id,
        agent_pool_id=token.agent_pool_id,
    )


def current_principal() -> Principal:
    """The caller of the current request, authenticated once per request; ``Forbidden`` for an agent token."""
    from flask import g, request

    principal: Principal | None = g.get("principal")
    if principal is None:
        principal = authenticate(request.headers.get("Authorization"))
        g.principal = principal
    if principal.kind == "agent":
        # Every API but the agents' asks here, so this one check keeps agent tokens out of all of them.
        raise Forbidden(AGENT_ONLY)
    return principal
