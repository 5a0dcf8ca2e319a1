"""Configuration versions (TFE ``configuration-versions``): create, show, list, and the signed upload URL.

Terraform's remote backend and cloud block create one per remote plan or apply and PUT the ``.tar.gz`` of the
working directory to its ``upload-url`` (no Authorization: the signature is the grant), then poll it until it is
``uploaded``. A refused archive is a 400 naming the reason, and the version shows ``errored`` with it.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from app.auth.permissions import Action
from app.auth.signed_urls import signed_query, verify_signed_request
from app.core.errors import InvalidInput, NotFound
from app.extensions import config
from app.models import ConfigurationVersion
from app.repositories import configuration_versions as versions
from app.tfc_api.blueprint import bp
from app.tfc_api.context import api_base_url
from app.tfc_api.jsonapi import Resource, attributes_of, collection, document, request_body, requested_page
from app.tfc_api.lookup import find_workspace_by_id
from app.tfc_api.serializers import configuration_version_resource
from app.web.request_body import request_chunks

UPLOAD_TTL_SECONDS = 60 * 60


def _upload_path(version: ConfigurationVersion) -> str:
    return f"configuration-versions/{version.id}/upload"


def _resource(version: ConfigurationVersion, *, upload_url: bool = False) -> Resource:
    url = None
    if upload_url and version.status == "pending":
        path = _upload_path(version)
        url = f"{api_base_url()}/{path}?{signed_query('PUT', path, UPLOAD_TTL_SECONDS)}"
    return configuration_version_resource(version, url)


def _flag(attributes: dict[str, Any], name: str, default: bool) -> bool:
    value = attributes.get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"data.attributes.{name} must be a boolean")
    return value


@bp.route("/workspaces/<workspace_id>/configuration-versions", methods=["POST"])
def create_configuration_version(workspace_id: str) -> Response:
    """A pending version with its signed ``upload-url`` (201)."""
    target = find_workspace_by_id(workspace_id, Action.WRITE)
    attributes = attributes_of(request_body())
    version = versions.create_configuration_version(
        target,
        speculative=_flag(attributes, "speculative", False),
        auto_queue_runs=_flag(attributes, "auto-queue-runs", True),
    )
    return document(_resource(version, upload_url=True), 201)


@bp.route("/workspaces/<workspace_id>/configuration-versions")
def list_configuration_versions(workspace_id: str) -> Response:
    """The workspace's versions, newest first."""
    target = find_workspace_by_id(workspace_id, Action.READ)
    page = requested_page()
    found, total = versions.list_configuration_versions(target.workspace, page.offset, page.size)
    return collection([_resource(v) for v in found], page, total)


@bp.route("/configuration-versions/<version_id>")
def show_configuration_version(version_id: str) -> Response:
    """One version (what clients poll until ``uploaded``)."""
    version = versions.get_configuration_version(version_id)
    if version is None:
        raise NotFound(f"configuration version {version_id!r} not found")
    try:
        target = find_workspace_by_id(version.workspace_id, Action.READ)
    except NotFound:
        raise NotFound(f"configuration version {version_id!r} not found") from None
    # The upload URL is a write grant: only a caller who may write the workspace gets one.
    return document(_resource(version, upload_url=target.allows(Action.WRITE)))


@bp.route("/configuration-versions/<version_id>/upload", methods=["PUT"])
def upload_configuration(version_id: str) -> Response:
    """The signed ``upload-url``: the ``.tar.gz`` body, checked to unpack safely, then stored encrypted."""
    verify_signed_request("PUT", f"configuration-versions/{version_id}/upload", request.args)
    version = versions.get_configuration_version(version_id)
    if version is None:
        raise NotFound(f"configuration version {version_id!r} not found")
    limit = config().max_state_size
    versions.receive_archive(version, request_chunks(limit), limit)
    return Response(status=200)
