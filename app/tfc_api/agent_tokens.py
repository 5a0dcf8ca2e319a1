"""Agent tokens (TFE ``agent-pools/:id/authentication-tokens``): they authenticate Statesman agents of the pool and
nothing else. Showing and revoking one by id is ``authentication-tokens/:id``."""

from __future__ import annotations

from flask import Response

from app.core.errors import InvalidInput
from app.repositories.tokens import create_token, list_agent_tokens
from app.tfc_api.blueprint import bp
from app.tfc_api.context import caller
from app.tfc_api.jsonapi import attributes_of, collection, data_of, document, paginate, request_body, requested_page
from app.tfc_api.lookup import find_agent_pool
from app.tfc_api.serializers import token_resource
from app.tfc_api.token_requests import description_of, requested_expiry

TYPE = "authentication-tokens"


@bp.route("/agent-pools/<pool_id>/authentication-tokens", methods=["GET"])
def list_agent_tokens_of_pool(pool_id: str) -> Response:
    """The pool's live agent tokens, newest first (never their secrets)."""
    found, pool = find_agent_pool(pool_id)
    tokens = list_agent_tokens(found.org, pool)
    page = requested_page()
    return collection([token_resource(t) for t in paginate(tokens, page)], page, len(tokens))


@bp.route("/agent-pools/<pool_id>/authentication-tokens", methods=["POST"])
def create_agent_token(pool_id: str) -> Response:
    """A new agent token of the pool (201 with its secret, this once); ``description`` is required."""
    found, pool = find_agent_pool(pool_id)
    body = request_body()
    if data_of(body).get("type") not in (None, "", TYPE):
        raise InvalidInput(f'data.type must be "{TYPE}"')
    attributes = attributes_of(body)
    description = description_of(attributes, required=True)
    expires_at = requested_expiry(attributes.get("expired-at"), caller())
    token, secret = create_token(
        found.org, None, found.actor, kind="agent", agent_pool=pool, description=description, expires_at=expires_at
    )
    return document(token_resource(token, secret), status=201)
