"""State version outputs, read from the stored (encrypted) state: values never live in SQL."""

from __future__ import annotations

from flask import Response

from app.core.errors import NotFound
from app.models import StateVersion
from app.repositories.state_versions import get_current_version, read_outputs
from app.tfc_api.blueprint import bp
from app.tfc_api.documents import exact_type, output_resources
from app.tfc_api.jsonapi import collection, document, paginate, requested_page
from app.tfc_api.lookup import find_version, find_workspace_by_id
from app.tfc_api.serializers import output_resource, parse_output_id


def _listing(version: StateVersion | None) -> Response:
    outputs = output_resources(version) if version is not None else []
    page = requested_page()
    return collection(paginate(outputs, page), page, len(outputs))


@bp.route("/state-versions/<version_id>/outputs")
def version_outputs(version_id: str) -> Response:
    """The outputs of one version, sensitive values hidden."""
    return _listing(find_version(version_id))


@bp.route("/workspaces/<workspace_id>/current-state-version-outputs")
def current_outputs(workspace_id: str) -> Response:
    """The outputs of the current version (an empty list when the workspace has no state)."""
    return _listing(get_current_version(find_workspace_by_id(workspace_id).workspace))


@bp.route("/state-version-outputs/<output_id>")
def show_output(output_id: str) -> Response:
    """One output with its value, sensitive or not (how the cloud block's ``terraform output`` reads them)."""
    version_id, name = parse_output_id(output_id)
    try:
        version = find_version(version_id)
    except NotFound:
        raise NotFound(f"state version output {output_id!r} not found") from None
    spec = read_outputs(version).get(name) if version.status == "finalized" else None
    if not isinstance(spec, dict):
        raise NotFound(f"state version output {output_id!r} not found")
    return document(output_resource(version, name, exact_type(version, name, spec), reveal=True))
