"""``terraform login`` (Terraform's ``login.v1`` service): an OAuth 2.0 authorization server for one public client.

Its own blueprint package because OAuth is its own protocol: errors are RFC 6749 error codes (a JSON body at the
token endpoint, a redirect or a page at the authorization endpoint), not JSON:API documents or the management
API's shape. Discovery (``/.well-known/terraform.json``) lives with the TFC API and offers this service only when
sign-in through an identity provider is configured.

- ``authorization.py``: ``/oauth/authorization`` (Terraform's request, checked, then the identity provider) and
  ``/oauth/callback`` (the identity provider's answer, then a one-time code for Terraform's loopback server).
- ``token.py``: ``/oauth/token`` (the code, redeemed once with the PKCE verifier, for an API token).
- ``exchange.py``: ``/v1/auth/exchange`` and ``/v1/auth/token`` (an id token for an access and a refresh token,
  refresh rotation), its own blueprint because it lives under ``/v1`` but speaks OAuth's errors.
"""

from __future__ import annotations

import html

from flask import Blueprint, Response, jsonify

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


class OAuthProblem(Exception):
    """An OAuth error: ``error`` is an RFC 6749 / RFC 7636 code, ``description`` is safe to show (no secrets)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def error_json(problem: OAuthProblem) -> Response:
    """The token endpoint's error (RFC 6749, section 5.2)."""
    response = jsonify(error=problem.error, error_description=problem.description)
    response.status_code = problem.status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    if problem.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="statesman"'
    return response


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in failed - Statesman</title></head>
<body><h1>Sign-in failed</h1><p><code>{error}</code>: {description}</p>
<p>Run <code>terraform login</code> again to start over.</p></body></html>
"""


def error_page(problem: OAuthProblem) -> Response:
    """An error shown in the browser, where redirecting to the client would not be safe (RFC 6749, 4.1.2.1)."""
    body = PAGE.format(error=html.escape(problem.error), description=html.escape(problem.description))
    return Response(body, status=problem.status, mimetype="text/html", headers={"Cache-Control": "no-store"})


from app.oauth import authorization, token  # noqa: E402,F401  (routes register on bp)
