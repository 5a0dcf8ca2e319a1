"""User tokens (TFE ``users/:id/authentication-tokens`` and ``authentication-tokens/:id``): a person's own tokens.

Only a user's API token manages that user's tokens, and only in its own organization. A token never mints a
stronger one: the new token keeps the caller's scope and workspace limit and expires no later than the caller.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Response

from app.auth.principal import Principal
from app.core.clock import utcnow
from app.core.errors import InvalidInput, NotFound
from app.models import ApiToken
from app.repositories.orgs import get_org
from app.repositories.tokens import create_token, get_token, list_user_tokens, revoke_token
from app.repositories.users import get_user_by_subject
from app.tfc_api.blueprint import bp
from app.tfc_api.context import caller
from app.tfc_api.jsonapi import (
    Resource,
    attributes_of,
    collection,
    data_of,
    document,
    paginate,
    ref,
    request_body,
    requested_page,
    resource,
    rfc3339,
)

TYPE = "authentication-tokens"


def _token_resource(token: ApiToken, secret: str | None = None) -> Resource:
    return resource(
        TYPE,
        token.id,
        {
            "created-at": rfc3339(token.created_at),
            "last-used-at": rfc3339(token.last_used_at),
            "description": token.description,
            "expired-at": rfc3339(token.expires_at),
            "token": secret,  # only in the answer that creates it
        },
        {"created-by": ref("users", token.user_id)},
    )


def _owner(user_id: str) -> Principal:
    """The caller when it is ``user_id``'s API token; otherwise ``NotFound`` (nobody learns whose ids exist)."""
    principal = caller()
    if principal.kind != "token" or principal.user_id is None or principal.user_id != user_id:
        raise NotFound(f"user {user_id!r} not found")
    return principal


@bp.route("/users/<user_id>/authentication-tokens", methods=["GET"])
def list_authentication_tokens(user_id: str) -> Response:
    """The caller's live tokens in the caller's organization."""
    principal = _owner(user_id)
    assert principal.org_id is not None
    tokens = list_user_tokens(user_id, principal.org_id)
    page = requested_page()
    return collection([_token_resource(t) for t in paginate(tokens, page)], page, len(tokens))


@bp.route("/users/<user_id>/authentication-tokens", methods=["POST"])
def create_authentication_token(user_id: str) -> Response:
    """A new token for the caller (201; its secret is in ``attributes.token``, this once)."""
    principal = _owner(user_id)
    body = request_body()
    if data_of(body).get("type") not in (None, "", TYPE):
        raise InvalidInput(f'data.type must be "{TYPE}"')
    attributes = attributes_of(body)
    description = attributes.get("description") or ""
    if not isinstance(description, str) or len(description) > 255:
        raise InvalidInput("description must be a string of at most 255 characters")
    expires_at = _expiry(attributes.get("expired-at"), principal)
    org = get_org(principal.org_id or "")
    user = get_user_by_subject(principal.subject)
    if org is None or user is None or user.id != user_id:
        raise NotFound(f"user {user_id!r} not found")
    token, secret = create_token(
        org,
        user,
        principal.subject,
        scope=principal.scope,
        expires_at=expires_at,
        workspace_name=principal.workspace_name,
        description=description,
    )
    return document(_token_resource(token, secret), status=201)


def _expiry(value: object, principal: Principal) -> datetime | None:
    """The requested expiry (RFC 3339, in the future), capped at the calling token's own expiry."""
    requested: datetime | None = None
    if value is not None:
        if not isinstance(value, str):
            raise InvalidInput("expired-at must be an RFC 3339 time")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("expired-at must be an RFC 3339 time") from None
        if parsed.tzinfo is None:
            raise InvalidInput("expired-at needs a time zone (for example 2030-01-01T00:00:00Z)")
        requested = parsed.astimezone(UTC).replace(tzinfo=None)  # naive UTC, as the columns store times
        if requested <= utcnow() + timedelta(seconds=1):
            raise InvalidInput("expired-at must be in the future")
    own = get_token(principal.token_id) if principal.token_id else None
    ceiling = own.expires_at if own is not None else None
    if ceiling is not None and (requested is None or requested > ceiling):
        return ceiling
    return requested


def _own_token(token_id: str) -> tuple[Principal, ApiToken]:
    principal = caller()
    token = get_token(token_id)
    if (
        principal.kind != "token"
        or principal.user_id is None
        or token is None
        or token.revoked_at is not None
        or token.user_id != principal.user_id
        or token.org_id != principal.org_id
    ):
        raise NotFound(f"authentication token {token_id!r} not found")
    return principal, token


@bp.route("/authentication-tokens/<token_id>", methods=["GET"])
def show_authentication_token(token_id: str) -> Response:
    """One of the caller's tokens (never its secret)."""
    _principal, token = _own_token(token_id)
    return document(_token_resource(token))


@bp.route("/authentication-tokens/<token_id>", methods=["DELETE"])
def delete_authentication_token(token_id: str) -> Response:
    """Revoke one of the caller's tokens (204); every worker refuses it within seconds."""
    principal, token = _own_token(token_id)
    revoke_token(token.id, principal.subject)
    return Response(status=204)
