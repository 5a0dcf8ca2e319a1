"""The organization token (TFE ``organizations/:name/authentication-token``): one per organization.

``POST`` makes a new one and revokes the one before, in one transaction; the secret is in that answer only. Managing
it needs ``rbac.manage`` in the organization, so only a user's token (or the UI proxy acting for a user) may.
"""

from __future__ import annotations

from flask import Response

from app.auth.permissions import Action
from app.core.errors import InvalidInput, NotFound
from app.repositories.tokens import get_org_token, regenerate_org_token, revoke_org_token
from app.tfc_api.blueprint import bp
from app.tfc_api.context import caller
from app.tfc_api.jsonapi import attributes_of, data_of, document, request_body, respond
from app.tfc_api.lookup import find_org
from app.tfc_api.serializers import token_resource
from app.tfc_api.token_requests import requested_expiry

TYPE = "authentication-tokens"


@bp.route("/organizations/<org>/authentication-token", methods=["GET"])
def show_organization_token(org: str) -> Response:
    """The organization token (never its secret); 404 when the organization has none."""
    found = find_org(org, Action.MANAGE).org
    token = get_org_token(found)
    if token is None:
        raise NotFound(f"organization {found.name!r} has no organization token")
    return document(token_resource(token))


@bp.route("/organizations/<org>/authentication-token", methods=["POST"])
def create_organization_token(org: str) -> Response:
    """A new organization token replacing any before it (201 with its secret, this once)."""
    access = find_org(org, Action.MANAGE)
    body = request_body()
    if data_of(body).get("type") not in (None, "", TYPE):
        raise InvalidInput(f'data.type must be "{TYPE}"')
    expires_at = requested_expiry(attributes_of(body).get("expired-at"), caller())
    token, secret = regenerate_org_token(access.org, access.actor, expires_at)
    return document(token_resource(token, secret), status=201)


@bp.route("/organizations/<org>/authentication-token", methods=["DELETE"])
def delete_organization_token(org: str) -> Response:
    """Revoke the organization token (204); 404 when there is none."""
    access = find_org(org, Action.MANAGE)
    revoke_org_token(access.org, access.actor)
    return respond(None, 204)
