"""State versions: create (inline, or through a signed upload URL), list, show, download, rollback.

TFE rules kept here: a state version is only accepted from the caller holding the workspace lock, the serial/lineage
guard of ``write_state`` applies (``force: true`` overrides it and needs delete permission, like ``?force=true`` on
the http backend), and every version stays individually addressable and immutable.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Response, request

from app.auth.permissions import Action
from app.auth.signed_urls import has_signature, signed_query, verify_signed_request
from app.core.errors import Forbidden, InvalidInput, NotFound
from app.core.statefile import READ_CHUNK, StateBody
from app.extensions import config
from app.models import StateVersion, Workspace
from app.repositories.state_uploads import (
    attach_json_state,
    check_declared,
    create_pending_version,
    create_version,
    decode_copy,
    finalize_upload,
)
from app.repositories.state_versions import (
    UPLOAD_WINDOW_SECONDS,
    check_write_permission,
    get_current_version,
    get_version,
    get_version_by_id,
    list_versions,
    rollback_to,
)
from app.repositories.workspaces import get_workspace_by_id
from app.tfc_api.blueprint import bp
from app.tfc_api.context import api_base_url, caller
from app.tfc_api.documents import output_resources
from app.tfc_api.jsonapi import (
    Resource,
    attributes_of,
    collection,
    data_of,
    request_body,
    requested_page,
    respond,
)
from app.tfc_api.locking import require_lock_of
from app.tfc_api.lookup import access, find_org, find_version, find_workspace, find_workspace_by_id
from app.tfc_api.schemas import StateVersionAttributes, load
from app.tfc_api.serializers import state_version_resource
from app.web.request_body import check_declared_size, receive_state
from app.web.state_responses import json_state_response, outputs_state_response, state_response

URL_TTL_SECONDS = UPLOAD_WINDOW_SECONDS
# The JSON copy is larger than the state it describes (it spells out every attribute); refusing it would fail
# the whole apply, so it may be up to twice the state limit.
JSON_STATE_SIZE_FACTOR = 2


def _content_path(version: StateVersion, kind: str) -> str:
    return _content_path_of(version.id, kind)


def _content_path_of(version_id: str, kind: str) -> str:
    return f"state-versions/{version_id}/{kind}"


def _signed_url(method: str, path: str, extra: dict[str, str] | None = None) -> str:
    return f"{api_base_url()}/{path}?{signed_query(method, path, URL_TTL_SECONDS, extra)}"


def render(version: StateVersion, *, uploads: bool = False, force: bool = False) -> Resource:
    """A version with its hosted download URLs (for callers that may read state) or upload URLs (when pending).

    Outputs-only callers get a state download URL whose document has the outputs and no resources (what
    ``terraform_remote_state`` through the remote backend downloads), and no JSON state URL: the JSON state lists
    every resource, like the state itself.
    """
    urls: dict[str, str | None] = {}
    workspace = get_workspace_by_id(version.workspace_id)
    if version.status == "finalized" and workspace is not None:
        may = access(workspace.organization)
        if may.allows(Action.READ, workspace.name):
            urls["hosted-state-download-url"] = _signed_url("GET", _content_path(version, "download"))
            if version.json_state_key is not None:
                urls["hosted-json-state-download-url"] = _signed_url("GET", _content_path(version, "json-download"))
        elif may.allows(Action.READ_OUTPUTS, workspace.name):
            urls["hosted-state-download-url"] = _signed_url("GET", _content_path(version, "outputs-download"))
    if uploads:
        extra = {"force": "1"} if force else {}
        urls["hosted-state-upload-url"] = _signed_url("PUT", _content_path(version, "content"), extra)
        urls["hosted-json-state-upload-url"] = _signed_url("PUT", _content_path(version, "json-content"))
    return state_version_resource(version, urls)


def _document(version: StateVersion, status: int = 200, **options: bool) -> Response:
    payload: dict[str, Any] = {"data": render(version, **options)}
    if "outputs" in request.args.get("include", "").split(","):
        payload["included"] = output_resources(version)
    return respond(payload, status)


@bp.route("/workspaces/<workspace_id>/current-state-version")
def get_current_state_version(workspace_id: str) -> Response:
    """The current version; 404 when the workspace has no state (Terraform reads that as "no state yet")."""
    workspace = find_workspace_by_id(workspace_id).workspace
    version = get_current_version(workspace)
    if version is None:
        raise NotFound(f"workspace {workspace.name!r} has no state yet")
    return _document(version)


@bp.route("/state-versions/<version_id>")
def get_state_version(version_id: str) -> Response:
    """One version by id (pending, finalized or discarded)."""
    return _document(find_version(version_id))


@bp.route("/workspaces/<workspace_id>/state-versions")
def list_workspace_state_versions(workspace_id: str) -> Response:
    """The workspace's finalized versions, newest first."""
    return _listing(find_workspace_by_id(workspace_id, Action.READ).workspace)


@bp.route("/state-versions")
def list_state_versions() -> Response:
    """``filter[workspace][name]`` and ``filter[organization][name]`` (both required, as in TFE)."""
    org_ref = request.args.get("filter[organization][name]")
    name = request.args.get("filter[workspace][name]")
    if not org_ref or not name:
        raise InvalidInput("filter[organization][name] and filter[workspace][name] are both required")
    return _listing(find_workspace(find_org(org_ref), name, Action.READ).workspace)


def _listing(workspace: Workspace) -> Response:
    page = requested_page()
    versions, total = list_versions(workspace, offset=page.offset, limit=page.size)
    return collection([render(v) for v in versions], page, total)


@bp.route("/workspaces/<workspace_id>/state-versions", methods=["POST"])
def post_state_version(workspace_id: str) -> Response:
    """201 with the new version: inline ``state`` is written now; without it the version is pending an upload."""
    target = find_workspace_by_id(workspace_id, Action.WRITE)  # authorize before reading the body
    workspace = target.workspace
    attributes = load(StateVersionAttributes(), attributes_of(request_body(_inline_limit())))
    principal = caller()
    check_write_permission(target, force=attributes["force"])
    lock_id = require_lock_of(workspace, principal.subject, "creating a state version")
    json_state = decode_copy(attributes["json_state"], "json-state")
    json_outputs = decode_copy(attributes["json_state_outputs"], "json-state-outputs")
    if attributes["state"] is None:
        version = create_pending_version(
            workspace,
            attributes["serial"],
            attributes["lineage"],
            attributes["md5"],
            principal.subject,
            json_state=json_state,
            json_outputs=json_outputs,
        )
        return _document(version, 201, uploads=True, force=attributes["force"])
    with StateBody.from_bytes(_decode(attributes["state"]), config().max_state_size) as body:
        check_declared(body.validate(), body, attributes["serial"], attributes["lineage"], attributes["md5"])
        result = create_version(
            workspace,
            body,
            principal.subject,
            lock_id,
            force=attributes["force"],
            json_state=json_state,
            json_outputs=json_outputs,
        )
    return _document(result.version, 201)


def _inline_limit() -> int:
    # the base64 state, and room for the json-state and json-state-outputs copies newer clients send with it
    return 3 * (config().max_state_size * 4 // 3 + 4) + 1024 * 1024


def _decode(encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("state is not valid base64") from None


@bp.route("/state-versions/<version_id>/content", methods=["PUT"])
def put_state_content(version_id: str) -> Response:
    """The signed ``hosted-state-upload-url``: raw state bytes, no Authorization (the signature is the grant).

    Terraform sends this and the JSON upload at the same time; either may come first, and each may be retried.
    """
    extra = verify_signed_request("PUT", f"state-versions/{version_id}/content", request.args)
    version = get_version_by_id(version_id)
    workspace = get_workspace_by_id(version.workspace_id) if version else None
    if version is None or workspace is None:
        raise NotFound(f"state version {version_id!r} not found")
    # a retried upload of a version already settled (finalized or discarded) writes nothing and needs no lock;
    # the bytes of a pending one must still arrive under its creator's lock
    pending = version.status == "pending"
    lock_id = require_lock_of(workspace, version.created_by or "", "uploading this state version") if pending else ""
    with receive_state(config().max_state_size) as body:
        finalize_upload(version, body, lock_id, force=extra.get("force") == "1")
    return Response(status=200)


@bp.route("/state-versions/<version_id>/json-content", methods=["PUT"])
def put_json_state_content(version_id: str) -> Response:
    """The signed ``hosted-json-state-upload-url``: Terraform's JSON copy of the state, kept encrypted beside it."""
    verify_signed_request("PUT", f"state-versions/{version_id}/json-content", request.args)
    version = get_version_by_id(version_id)
    if version is None:
        raise NotFound(f"state version {version_id!r} not found")
    limit = JSON_STATE_SIZE_FACTOR * config().max_state_size
    check_declared_size(limit)
    with StateBody.receive(iter(lambda: request.stream.read(READ_CHUNK), b""), limit) as body:
        attach_json_state(version, body)
    return Response(status=200)


@bp.route("/state-versions/<version_id>/download")
def download_state_version(version_id: str) -> Response:
    """The exact bytes of this version: by signed URL, or with a token that may read state."""
    version = _downloadable(version_id, "download")
    if version is None or version.status != "finalized":
        raise NotFound(f"state version {version_id!r} has no uploaded state")
    return state_response(version)


@bp.route("/state-versions/<version_id>/outputs-download")
def download_outputs_state(version_id: str) -> Response:
    """The state an outputs-only caller may read: real serial, lineage and outputs, no resources."""
    version = _downloadable(version_id, "outputs-download", Action.READ_OUTPUTS)
    if version is None or version.status != "finalized":
        raise NotFound(f"state version {version_id!r} has no uploaded state")
    return outputs_state_response(version)


@bp.route("/state-versions/<version_id>/json-download")
def download_json_state(version_id: str) -> Response:
    """The ``hosted-json-state-download-url``: the JSON copy Terraform sent, with the state's permission rule."""
    version = _downloadable(version_id, "json-download")
    if version is None or version.status != "finalized" or version.json_state_key is None:
        raise NotFound(f"state version {version_id!r} has no JSON state")
    return json_state_response(version)


def _downloadable(version_id: str, kind: str, action: str = Action.READ) -> StateVersion | None:
    """The version a download names: by a signed URL of this ``kind``, or with a token allowed ``action``."""
    if has_signature(request.args):
        return _signed_version(version_id, kind, action)
    return find_version(version_id, action)


def _signed_version(version_id: str, kind: str, action: str) -> StateVersion | None:
    """The version a signed download URL grants; an expired URL falls back to the request's token, if any."""
    try:
        verify_signed_request("GET", _content_path_of(version_id, kind), request.args)
    except Forbidden:
        if not request.headers.get("Authorization"):
            raise
        return find_version(version_id, action)
    return get_version_by_id(version_id)


@bp.route("/workspaces/<workspace_id>/state-versions", methods=["PATCH"])
def rollback_state_version(workspace_id: str) -> Response:
    """Make an earlier version current again (a new version, serial = current + 1); the caller holds the lock."""
    found = find_workspace_by_id(workspace_id, Action.WRITE)
    workspace = found.workspace
    target = _rollback_target(request_body())
    lock_id = require_lock_of(workspace, caller().subject, "rolling back")
    version = get_version(workspace, target)
    if version is None or version.status != "finalized":
        raise NotFound(f"state version {target!r} not found in workspace {workspace.name!r}")
    return _document(rollback_to(found, version, lock_id=lock_id).version)


def _rollback_target(body: dict[str, Any]) -> str:
    relation = (data_of(body).get("relationships") or {}).get("rollback-state-version") or {}
    target = (relation.get("data") or {}).get("id") if isinstance(relation, dict) else None
    if not isinstance(target, str) or not target:
        raise InvalidInput("data.relationships.rollback-state-version.data.id names the version to roll back to")
    return target
