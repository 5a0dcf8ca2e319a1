"""Workspace tags (names kept in the workspace's ``tag_names``) and the tag-bindings listing."""

from __future__ import annotations

import re
from typing import Any

from flask import Response

from app.auth.permissions import Action
from app.errors import InvalidInput
from app.models import Workspace
from app.repositories.workspaces import update_workspace
from app.tfc_api import bp
from app.tfc_api.context import caller
from app.tfc_api.jsonapi import collection, paginate, request_body, requested_page, respond
from app.tfc_api.lookup import find_workspace_by_id
from app.tfc_api.schemas import TAG_PATTERN, TAG_RULE
from app.tfc_api.serializers import tag_resource

_TAG = re.compile(TAG_PATTERN)


def _listing(workspace: Workspace) -> Response:
    names = sorted(workspace.tag_names or [])
    page = requested_page()
    return collection([tag_resource(name) for name in paginate(names, page)], page, len(names))


def _tag_names(body: dict[str, Any]) -> list[str]:
    """Names from ``{"data":[{"type":"tags","attributes":{"name"}}|{"type":"tags","id":"tag-<name>"}]}``."""
    data = body.get("data")
    if not isinstance(data, list):
        raise InvalidInput("data must be a list of tags")
    names = []
    for item in data:
        item = item if isinstance(item, dict) else {}
        name = (item.get("attributes") or {}).get("name") or str(item.get("id") or "").removeprefix("tag-")
        if not isinstance(name, str) or not _TAG.match(name):
            raise InvalidInput(f"invalid tag {name!r}: {TAG_RULE}")
        names.append(name)
    return names


@bp.route("/workspaces/<workspace_id>/relationships/tags")
def list_tags(workspace_id: str) -> Response:
    """The workspace's tags."""
    return _listing(find_workspace_by_id(workspace_id))


@bp.route("/workspaces/<workspace_id>/relationships/tags", methods=["POST"])
def add_tags(workspace_id: str) -> Response:
    """Add tags (idempotent); 204."""
    workspace = find_workspace_by_id(workspace_id, Action.WRITE)
    merged = list(dict.fromkeys([*(workspace.tag_names or []), *_tag_names(request_body())]))
    update_workspace(workspace, caller().subject, tag_names=merged)
    return respond(None, 204)


@bp.route("/workspaces/<workspace_id>/relationships/tags", methods=["DELETE"])
def remove_tags(workspace_id: str) -> Response:
    """Remove tags; 204."""
    workspace = find_workspace_by_id(workspace_id, Action.WRITE)
    doomed = set(_tag_names(request_body()))
    update_workspace(workspace, caller().subject, tag_names=[t for t in workspace.tag_names or [] if t not in doomed])
    return respond(None, 204)


@bp.route("/workspaces/<workspace_id>/tag-bindings")
def tag_bindings(workspace_id: str) -> Response:
    """Key/value tag bindings are not stored: the list is empty (the cloud block then uses plain tags)."""
    find_workspace_by_id(workspace_id)
    return collection([], requested_page(), 0)
