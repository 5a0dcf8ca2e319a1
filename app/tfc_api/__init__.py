"""The Terraform Cloud compatible API (TFE API v2 subset) for ``backend "remote"``, the cloud block and TFE SDKs.

One blueprint, registered at ``/api/v2`` and ``/tfe/api/v2`` (API tokens) and at ``/internal/tfe/api/v2``
(webhook-secret auth for the web UI's proxy); discovery lives at ``/.well-known/terraform.json``.
"""

from __future__ import annotations

from flask import Flask

from app.tfc_api import (
    account,
    agent_pools,
    agent_tokens,
    authentication_tokens,
    configuration_versions,
    discovery,
    errors,
    locks,
    organization_tokens,
    organizations,
    outputs,
    plans,
    projects,
    runs,
    state_versions,
    tags,
    variables,
    workspaces,
)
from app.tfc_api.blueprint import bp
from app.tfc_api.context import MOUNTS
from app.web.mounting import mount

__all__ = [
    "account",
    "agent_pools",
    "agent_tokens",
    "authentication_tokens",
    "bp",
    "configuration_versions",
    "errors",
    "locks",
    "organization_tokens",
    "organizations",
    "outputs",
    "plans",
    "projects",
    "register",
    "runs",
    "state_versions",
    "tags",
    "variables",
    "workspaces",
]


def register(app: Flask) -> None:
    """Mount the API at its three doors, serve discovery, and stamp the TFE headers on every API response."""
    mount(app, bp, MOUNTS, errors.render_error)
    app.register_blueprint(discovery.well_known)
    app.after_request(discovery.add_api_headers)
