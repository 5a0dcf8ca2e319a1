"""``/oidc/jwks.json``: the public keys of the access tokens ``/v1/auth`` issues, for services that verify them.

A verifier picks the key by the token's ``kid``. Retired keys stay listed until pruned (``flask signing-keys
prune``), so a rotation never invalidates a token before it expires; a verifier that caches this document should
fetch it again when it meets an unknown ``kid``.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.repositories.signing_keys import jwks as published_jwks

bp = Blueprint("oidc", __name__, url_prefix="/oidc")
CACHE_SECONDS = 300


@bp.route("/jwks.json")
def jwks() -> Response:
    """The JWK set (RFC 7517): the signing key first, then the retired ones still valid for verification."""
    response = jsonify(published_jwks())
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    return response
