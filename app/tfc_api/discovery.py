"""Service discovery, ``ping``, ``motd`` and the headers TFE clients read from every API response."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template_string, request

from app.core.terraform_login import LOGIN_PORTS, TERRAFORM_CLIENT_ID
from app.extensions import config
from app.tfc_api.blueprint import bp
from app.tfc_api.context import PREFIXES, PUBLIC_MOUNT
from app.web.urls import site_path_prefix

well_known = Blueprint("tfc_discovery", __name__)

API_VERSION = "2.5"
# go-tfe and Terraform only recognise these two application names; we behave like a self-hosted TFE.
APP_NAME = "Terraform Enterprise"
TFE_VERSION = "v202502-1"
MOTD = "Statesman: state storage and locking for Terraform and OpenTofu (TFE API v2 subset, {execution})."


@well_known.route("/.well-known/terraform.json")
def terraform_json() -> Response:
    """Where Terraform finds the API; no ``versions.v1`` (its constraints would be checked); ``login.v1`` only
    when sign-in through an identity provider is configured (``terraform login`` then opens it in a browser)."""
    api = f"{site_path_prefix()}{PUBLIC_MOUNT}/"
    # terrasnek reads modules.v1 unconditionally; Terraform consults it only for modules sourced from this host.
    services: dict[str, object] = {
        "tfe.v2": api,
        "tfe.v2.1": api,
        "tfe.v2.2": api,
        "state.v2": api,
        "motd.v1": f"{api}motd",
        "modules.v1": f"{site_path_prefix()}/api/registry/v1/modules/",
    }
    if config().oidc_enabled:
        services["login.v1"] = {
            "client": TERRAFORM_CLIENT_ID,
            "grant_types": ["authz_code"],
            "authz": f"{site_path_prefix()}/oauth/authorization",
            "token": f"{site_path_prefix()}/oauth/token",
            "ports": list(LOGIN_PORTS),
        }
    return jsonify(services)


# Without a login.v1 service `terraform login` sends the user here (the page Terraform Cloud has at this path) and
# then asks for a token at its prompt. No sign-in exists here, so the page says how an administrator makes one.
TOKENS_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>API tokens - Statesman</title></head>
<body>
<h1>API tokens for Terraform</h1>
<p>This server issues API tokens from its command line; it has no sign-in page. Ask an administrator to run,
with the server's configuration:</p>
<pre>flask tokens create --org ORGANIZATION --user YOUR_USER --description "terraform login"</pre>
<p>Options: <code>--read-only</code> (read state, never write or lock), <code>--workspace NAME</code> (one workspace
only), <code>--expires-in 30d</code>. The command prints the token once.</p>
<p>Paste the token at Terraform's prompt <code>Token for {{ host }}:</code>. Terraform keeps it in
<code>~/.terraform.d/credentials.tfrc.json</code>; a CLI config block
<code>credentials "{{ host }}" { token = "..." }</code> works as well.</p>
</body>
</html>
"""


@well_known.route("/app/settings/tokens")
def tokens_page() -> Response:
    """The page ``terraform login`` opens: how to get a token (plain HTML, no secrets)."""
    html = render_template_string(TOKENS_PAGE, host=request.host)
    return Response(html, mimetype="text/html", headers={"Cache-Control": "no-store"})


@bp.route("/ping")
def ping() -> Response:
    """204 with the version headers; go-tfe calls it before anything else (no authentication)."""
    return Response(status=204)


@bp.route("/motd")
def motd() -> Response:
    """The message ``terraform login`` prints: what this server does, remote runs included when they are on."""
    execution = "remote runs by Statesman agents" if config().runs_enabled else "local execution"
    return jsonify(msg=MOTD.format(execution=execution))


def add_api_headers(response: Response) -> Response:
    """``TFP-API-Version`` (the cloud block needs >= 2.5), ``X-TFE-Version`` and ``TFP-AppName`` on every API path.

    No ``X-RateLimit-Limit``: go-tfe fails every call when it reads a limit below 4, and we do not rate limit.
    """
    if request.path.startswith(PREFIXES):
        response.headers["TFP-API-Version"] = API_VERSION
        response.headers["X-TFE-Version"] = TFE_VERSION
        response.headers["TFP-AppName"] = APP_NAME
    return response
