"""What ``terraform login`` expects of a server, shared by service discovery and the login endpoints."""

from __future__ import annotations

# The one client Terraform's login.v1 names in discovery; public (no secret), so PKCE S256 is mandatory.
TERRAFORM_CLIENT_ID = "terraform-cli"
# Terraform listens on 127.0.0.1 at a random port of the advertised range and names "localhost" in its redirect URI.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
LOGIN_PORTS = (10000, 10010)
