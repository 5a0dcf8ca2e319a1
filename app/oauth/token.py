"""``/oauth/token``: a one-time code, the PKCE verifier and the same client and redirect URI buy an API token."""

from __future__ import annotations

import hmac
from datetime import timedelta

from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN, create_s256_code_challenge
from flask import Response, abort, jsonify, request

from app.core.terraform_login import TERRAFORM_CLIENT_ID
from app.extensions import config
from app.oauth.blueprint import bp
from app.oauth.errors import OAuthProblem, error_json
from app.repositories.oauth_codes import CodeRefused, redeem_code, token_for_grant


@bp.route("/token", methods=["POST"])
def token() -> Response:
    """Exchange an authorization code (RFC 6749, section 4.1.3, with RFC 7636's ``code_verifier``)."""
    if not config().oidc_enabled:
        abort(404, "terraform login is not available: no identity provider is configured (OPENTACO_AUTH_ISSUER)")
    try:
        return _exchange()
    except OAuthProblem as problem:
        return error_json(problem)


def _client_id() -> str:
    """The public client's id from the form or from Basic authentication with an empty password (both allowed)."""
    form_id = request.form.get("client_id")
    basic = request.authorization
    basic_id = basic.username if basic is not None and basic.type == "basic" else None
    if basic is not None and basic_id is None:
        raise OAuthProblem("invalid_client", "client authentication must be Basic or client_id in the body", 401)
    if basic is not None and basic.password:
        raise OAuthProblem("invalid_client", f"{TERRAFORM_CLIENT_ID} is a public client and has no secret", 401)
    if form_id is not None and basic_id is not None and form_id != basic_id:
        raise OAuthProblem("invalid_request", "client_id differs between the body and the Authorization header")
    client_id = form_id if form_id is not None else basic_id
    if client_id != TERRAFORM_CLIENT_ID:
        raise OAuthProblem("invalid_client", "unknown client", 401)
    return client_id


def _exchange() -> Response:
    form = request.form
    if any(len(form.getlist(name)) > 1 for name in form):
        raise OAuthProblem("invalid_request", "parameters must not be repeated")
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthProblem("invalid_request", "grant_type is required")
    client_id = _client_id()
    if grant_type != "authorization_code":
        raise OAuthProblem("unsupported_grant_type", "only grant_type=authorization_code is supported")
    code, redirect_uri, verifier = form.get("code"), form.get("redirect_uri"), form.get("code_verifier")
    if not code:
        raise OAuthProblem("invalid_request", "code is required")
    if not redirect_uri:
        raise OAuthProblem("invalid_request", "redirect_uri is required")
    if not verifier:
        # RFC 7636, section 4.5: every code of this server was issued with a challenge.
        raise OAuthProblem("invalid_request", "code_verifier is required")
    try:
        grant = redeem_code(code)
    except CodeRefused as exc:
        raise OAuthProblem("invalid_grant", str(exc)) from None
    # The code is spent from here on: a wrong verifier or redirect URI cannot be retried (no guessing).
    if grant.client_id != client_id:
        raise OAuthProblem("invalid_grant", "the code was issued to another client")
    if not hmac.compare_digest(grant.redirect_uri, redirect_uri):
        raise OAuthProblem("invalid_grant", "redirect_uri differs from the authorization request")
    if not CODE_VERIFIER_PATTERN.fullmatch(verifier) or not hmac.compare_digest(
        create_s256_code_challenge(verifier), grant.code_challenge
    ):
        raise OAuthProblem("invalid_grant", "code_verifier does not match the code challenge")
    lifetime = config().terraform_token_ttl_seconds
    try:
        _token, secret = token_for_grant(code, grant, timedelta(seconds=lifetime))
    except CodeRefused as exc:
        raise OAuthProblem("invalid_grant", str(exc)) from None
    response = jsonify(access_token=secret, token_type="bearer", expires_in=lifetime)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
