"""``/oauth/authorization`` and ``/oauth/callback``: Terraform's browser step, through the identity provider."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636.challenge import CODE_CHALLENGE_PATTERN
from flask import abort, redirect, request, session
from werkzeug.wrappers import Response

from app.auth.oidc import SignInFailed, finish_sign_in, sign_in_user, start_sign_in, token_org
from app.core.terraform_login import LOGIN_PORTS, LOOPBACK_HOSTS, TERRAFORM_CLIENT_ID
from app.extensions import config
from app.oauth.blueprint import bp
from app.oauth.errors import OAuthProblem, error_page
from app.repositories.oauth_codes import issue_code
from app.web.urls import site_url

log = logging.getLogger("statesman.oauth")

PENDING = "terraform_login"
MAX_STATE_LENGTH = 512


def _require_sign_in() -> None:
    if not config().oidc_enabled:
        abort(404, "terraform login is not available: no identity provider is configured (OPENTACO_AUTH_ISSUER)")


def check_redirect_uri(value: str | None) -> str:
    """Terraform's loopback callback, ``http://localhost:<port>/...`` with a port of the advertised range.

    RFC 8252 loopback redirects: plain HTTP is fine because the request never leaves the machine; anything else
    (another host, https, a user part, a fragment, a port outside the range) could hand the code to someone else.
    """
    if not value:
        raise OAuthProblem("invalid_request", "redirect_uri is required")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise OAuthProblem("invalid_request", "redirect_uri is not a valid URL") from None
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or parts.username or parts.password:
        raise OAuthProblem("invalid_request", "redirect_uri must be http://localhost or http://127.0.0.1")
    if parts.fragment or "#" in value:
        raise OAuthProblem("invalid_request", "redirect_uri must not have a fragment")
    if port is None or not LOGIN_PORTS[0] <= port <= LOGIN_PORTS[1]:
        raise OAuthProblem("invalid_request", f"redirect_uri port must be in {LOGIN_PORTS[0]}-{LOGIN_PORTS[1]}")
    return value


def _back_to_client(redirect_uri: str, state: str | None, **params: str) -> Response:
    if state is not None:
        params["state"] = state
    response = redirect(add_params_to_uri(redirect_uri, list(params.items())))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/authorization")
def authorization() -> Response:
    """Check Terraform's authorization request, remember it in the browser's session, go to the identity provider."""
    _require_sign_in()
    args = request.args
    try:
        if args.get("client_id") != TERRAFORM_CLIENT_ID:
            raise OAuthProblem("invalid_client", f"unknown client_id; this server's client is {TERRAFORM_CLIENT_ID}")
        redirect_uri = check_redirect_uri(args.get("redirect_uri"))
    except OAuthProblem as problem:
        # Never redirect to a URI we could not verify (RFC 6749, section 4.1.2.1): tell the person instead.
        return error_page(problem)
    state = args.get("state")
    if state is not None and len(state) > MAX_STATE_LENGTH:
        return error_page(OAuthProblem("invalid_request", f"state is longer than {MAX_STATE_LENGTH} characters"))
    refused = _request_problem(args)
    if refused is not None:
        return _back_to_client(redirect_uri, state, error=refused.error, error_description=refused.description)
    session.clear()
    session.permanent = True
    session[PENDING] = {"redirect_uri": redirect_uri, "state": state, "code_challenge": args["code_challenge"]}
    try:
        return start_sign_in(f"{site_url()}/oauth/callback")
    except SignInFailed as exc:
        session.pop(PENDING, None)
        return _back_to_client(redirect_uri, state, error="temporarily_unavailable", error_description=str(exc))


def _request_problem(args: Any) -> OAuthProblem | None:
    """What is wrong with a request whose client and redirect URI are fine (answered by redirect), or None."""
    if args.get("response_type") != "code":
        return OAuthProblem("unsupported_response_type", "only response_type=code is supported")
    challenge = args.get("code_challenge")
    if not challenge:
        # RFC 7636, section 4.4.1: a public client must use PKCE.
        return OAuthProblem("invalid_request", "code challenge required")
    if args.get("code_challenge_method") != "S256":
        return OAuthProblem("invalid_request", "transform algorithm not supported: code_challenge_method must be S256")
    if not CODE_CHALLENGE_PATTERN.fullmatch(challenge):
        return OAuthProblem("invalid_request", "code_challenge must be 43-128 characters of A-Z a-z 0-9 - . _ ~")
    return None


@bp.route("/callback")
def callback() -> Response:
    """The identity provider's answer: verified by Authlib, turned into a user, then a one-time code for Terraform."""
    _require_sign_in()
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        session.clear()
        return error_page(OAuthProblem("invalid_request", "no terraform login is in progress in this browser"))
    try:
        identity = finish_sign_in()
    except SignInFailed as exc:
        session.clear()
        return error_page(OAuthProblem("access_denied", str(exc), status=400))
    session.clear()
    user, mapped = sign_in_user(identity)
    org, why = token_org(user, mapped)
    if org is None:
        return _back_to_client(pending["redirect_uri"], pending["state"], error="access_denied", error_description=why)
    code = issue_code(TERRAFORM_CLIENT_ID, pending["redirect_uri"], pending["code_challenge"], user, org)
    log.info("terraform login: code issued for %s in organization %s", user.subject, org.name)
    return _back_to_client(pending["redirect_uri"], pending["state"], code=code)
