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

from app.oauth import authorization, token
from app.oauth.blueprint import bp

__all__ = ["authorization", "bp", "token"]
