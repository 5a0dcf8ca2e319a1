"""OAuth errors (RFC 6749): a JSON body at the token endpoints, a page in the browser at the authorization endpoint."""

from __future__ import annotations

import html

from flask import Response, jsonify


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
