"""User tokens (TFE ``users/:id/authentication-tokens``) and any token by id (``authentication-tokens/:id``).

Only a user's API token manages that user's tokens, and only in its own organization. A token never mints a
stronger one: the new token keeps the caller's scope and workspace limit and expires no later than the caller.
By id, an organization or agent token is shown to and revoked by whoever may manage its organization
(``rbac.manage``, which needs a user); a service token (``flask tokens create`` without ``--user``) is the
operator's, through the command line only.
"""

from __future__ import annotations

from flask import Response

from app.auth.permissions import Action
from app.auth.principal import Principal
from app.core.errors import Forbidden, InvalidInput, NotFound
from app.models import ApiToken
from app.repositories.orgs import get_org
from app.repositories.tokens import create_token, get_token, list_user_tokens, revoke_token
from app.repositories.users import get_user_by_subject
from app.tfc_api.blueprint import bp
from app.tfc_api.context import caller
from app.tfc_api.jsonapi import attributes_of, collection, data_of, document, paginate, request_body, requested_page
from app.tfc_api.lookup import find_org
from app.tfc_api.serializers import token_resource
from app.tfc_api.token_requests import description_of, requested_expiry

TYPE = "authentication-tokens"
# Kinds managed by id through the organization's rbac.manage (user tokens: only by their owner).
_ORGANIZATION_MANAGED = ("organization", "agent")


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
    return collection([token_resource(t) for t in paginate(tokens, page)], page, len(tokens))


@bp.route("/users/<user_id>/authentication-tokens", methods=["POST"])
def create_authentication_token(user_id: str) -> Response:
    """A new token for the caller (201; its secret is in ``attributes.token``, this once)."""
    principal = _owner(user_id)
    body = request_body()
    if data_of(body).get("type") not in (None, "", TYPE):
        raise InvalidInput(f'data.type must be "{TYPE}"')
    attributes = attributes_of(body)
    description = description_of(attributes)
    expires_at = requested_expiry(attributes.get("expired-at"), principal)
    org = get_org(principal.org_id or "")
    user = get_user_by_subject(principal.subject)
    if org is None or user is None or user.id != user_id:
        raise NotFound(f"user {user_id!r} not found")
    token, secret = create_token(
        org,
        user,
        principal.subject,
        kind="user",
        scope=principal.scope,
        expires_at=expires_at,
        workspace_name=principal.workspace_name,
        description=description,
    )
    return document(token_resource(token, secret), status=201)


def _managed_token(token_id: str) -> tuple[Principal, ApiToken]:
    """A live token the caller may see and revoke; ``NotFound`` for any other (nothing says whose it is)."""
    principal = caller()
    token = get_token(token_id)
    missing = NotFound(f"authentication token {token_id!r} not found")
    if token is None or token.revoked_at is not None:
        raise missing
    if token.kind in _ORGANIZATION_MANAGED:
        try:
            find_org(token.org_id, Action.MANAGE)
        except (Forbidden, NotFound):
            raise missing from None
        return principal, token
    if (
        token.kind != "user"
        or principal.kind != "token"
        or principal.user_id is None
        or token.user_id != principal.user_id
        or token.org_id != principal.org_id
    ):
        raise missing
    return principal, token


@bp.route("/authentication-tokens/<token_id>", methods=["GET"])
def show_authentication_token(token_id: str) -> Response:
    """A user's own token, or an organization or agent token of an organization the caller manages (no secret)."""
    _principal, token = _managed_token(token_id)
    return document(token_resource(token))


@bp.route("/authentication-tokens/<token_id>", methods=["DELETE"])
def delete_authentication_token(token_id: str) -> Response:
    """Revoke such a token (204); every worker refuses it within seconds."""
    principal, token = _managed_token(token_id)
    revoke_token(token.id, principal.subject)
    return Response(status=204)
