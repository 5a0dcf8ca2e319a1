"""The ``terraform login`` blueprint (``/oauth``) and the one client it serves."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("oauth", __name__, url_prefix="/oauth")

# The one client Terraform's login.v1 names in discovery; public (no secret), so PKCE S256 is mandatory.
TERRAFORM_CLIENT_ID = "terraform-cli"
# Terraform listens on 127.0.0.1 at a random port of the advertised range and names "localhost" in its redirect URI.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
LOGIN_PORTS = (10000, 10010)
