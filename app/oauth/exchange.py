"""``/v1/auth/exchange`` and ``/v1/auth/token``: tokens for programmatic clients that hold an id token.

A client that signed in at the organization's identity provider (a CI job, a script with a device-flow login)
exchanges the id token for an access token and a refresh token, and later refreshes (RFC 6749, section 6).

The access token is an API token of this server that happens to be a signed JWT (other services verify it with
``/oidc/jwks.json``): Statesman checks it by its hash like every API token, so reuse detection can revoke it, and
the token path checks revocation, scope, organization and expiry, is remembered per worker for
``VERIFIED_TTL_SECONDS`` and records last use.
Errors are RFC 6749 section 5.2 JSON bodies.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, abort, jsonify, request

from app.auth.oidc import ProviderUnreachable, SignInFailed, sign_in_user, token_org, verify_id_token
from app.extensions import config
from app.oauth.errors import OAuthProblem, error_json
from app.repositories.refresh_tokens import IssuedTokens, RefreshRefused, refresh, start_family
from app.web.urls import site_url

bp = Blueprint("token_exchange", __name__, url_prefix="/v1/auth")

# Short, because a stolen access token cannot be told apart from its owner; the refresh token carries the sign-in.
ACCESS_LIFETIME = timedelta(hours=1)
MAX_ID_TOKEN_LENGTH = 16384


def _access_lifetime() -> timedelta:
    """An hour, or less when ``OPENTACO_TERRAFORM_TOKEN_TTL`` bounds sign-in tokens more tightly."""
    return min(ACCESS_LIFETIME, timedelta(seconds=config().terraform_token_ttl_seconds))


def _form() -> dict[str, str]:
    if not config().oidc_enabled:
        abort(404, "token exchange is not available: no identity provider is configured (OPENTACO_AUTH_ISSUER)")
    form = request.form
    if any(len(form.getlist(name)) > 1 for name in form):
        raise OAuthProblem("invalid_request", "parameters must not be repeated")
    return {name: form[name] for name in form}


def _answer(issued: IssuedTokens) -> Response:
    expires_in = int(_access_lifetime().total_seconds())
    response = jsonify(
        access_token=issued.access_secret,
        token_type="bearer",
        expires_in=expires_in,
        refresh_token=issued.refresh_token,
        organization=issued.access_token.organization.name,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.route("/exchange", methods=["POST"])
def exchange() -> Response:
    """An id token of the configured identity provider (form field ``id_token``) for an access and refresh token."""
    try:
        id_token = _form().get("id_token")
        if not id_token:
            raise OAuthProblem("invalid_request", "id_token is required")
        if len(id_token) > MAX_ID_TOKEN_LENGTH:
            raise OAuthProblem("invalid_request", f"id_token is longer than {MAX_ID_TOKEN_LENGTH} characters")
        try:
            identity = verify_id_token(id_token)
        except ProviderUnreachable as exc:
            raise OAuthProblem("temporarily_unavailable", str(exc), status=503) from None
        except SignInFailed as exc:
            raise OAuthProblem("invalid_grant", str(exc)) from None
        user, mapped = sign_in_user(identity)
        org, why = token_org(user, mapped)
        if org is None:
            raise OAuthProblem("invalid_grant", why)
        return _answer(start_family(org, user, _access_lifetime(), site_url()))
    except OAuthProblem as problem:
        return error_json(problem)


@bp.route("/token", methods=["POST"])
def token() -> Response:
    """``grant_type=refresh_token``: spend the refresh token, get the next access and refresh token."""
    try:
        form = _form()
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthProblem("invalid_request", "grant_type is required")
        if grant_type != "refresh_token":
            raise OAuthProblem("unsupported_grant_type", "only grant_type=refresh_token is supported")
        secret = form.get("refresh_token")
        if not secret:
            raise OAuthProblem("invalid_request", "refresh_token is required")
        try:
            return _answer(refresh(secret, _access_lifetime(), site_url()))
        except RefreshRefused as exc:
            raise OAuthProblem("invalid_grant", str(exc)) from None
    except OAuthProblem as problem:
        return error_json(problem)
