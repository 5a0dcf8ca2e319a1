"""Service discovery, ``ping``, ``motd`` and the headers TFE clients read from every API response."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.error_pages import TFC_PREFIXES
from app.tfc_api import bp
from app.tfc_api.context import PUBLIC_MOUNT, site_path_prefix

well_known = Blueprint("tfc_discovery", __name__)

API_VERSION = "2.5"
# go-tfe and Terraform only recognise these two application names; we behave like a self-hosted TFE.
APP_NAME = "Terraform Enterprise"
TFE_VERSION = "v202502-1"
MOTD = "Statesman: state storage and locking for Terraform and OpenTofu (TFE API v2 subset, local execution)."


@well_known.route("/.well-known/terraform.json")
def terraform_json() -> Response:
    """Where Terraform finds the API; no ``versions.v1`` (its constraints would be checked) and no ``login.v1``
    (only offered when an OIDC login is configured, which this server does not provide)."""
    api = f"{site_path_prefix()}{PUBLIC_MOUNT}/"
    # terrasnek reads modules.v1 unconditionally; Terraform consults it only for modules sourced from this host.
    return jsonify(
        {
            "tfe.v2": api,
            "tfe.v2.1": api,
            "tfe.v2.2": api,
            "state.v2": api,
            "motd.v1": f"{api}motd",
            "modules.v1": f"{site_path_prefix()}/api/registry/v1/modules/",
        }
    )


@bp.route("/ping")
def ping() -> Response:
    """204 with the version headers; go-tfe calls it before anything else (no authentication)."""
    return Response(status=204)


@bp.route("/motd")
def motd() -> Response:
    """The message ``terraform login`` prints."""
    return jsonify(msg=MOTD)


def add_api_headers(response: Response) -> Response:
    """``TFP-API-Version`` (the cloud block needs >= 2.5), ``X-TFE-Version`` and ``TFP-AppName`` on every API path.

    No ``X-RateLimit-Limit``: go-tfe fails every call when it reads a limit below 4, and we do not rate limit.
    """
    if request.path.startswith(TFC_PREFIXES):
        response.headers["TFP-API-Version"] = API_VERSION
        response.headers["X-TFE-Version"] = TFE_VERSION
        response.headers["TFP-AppName"] = APP_NAME
    return response
