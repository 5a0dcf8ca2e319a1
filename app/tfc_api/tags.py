"""Workspace tags through both TFE views: plain tags (``relationships/tags``) and key/value tag bindings.

Both views show the one tag set of ``app.repositories.tags``: the cloud block's tags strategy on Terraform >= 1.10
reads ``tag-bindings`` and PATCHes the keys it wants, older clients use ``relationships/tags``.
"""

from __future__ import annotations

import hashlib

from flask import Response

from app.auth.permissions import Action
from app.core.errors import InvalidInput
from app.models import Workspace
from app.repositories.tags import tags_of, with_bindings, with_plain_tags, without
from app.repositories.workspaces import update_workspace
from app.tfc_api.blueprint import bp
from app.tfc_api.context import caller
from app.tfc_api.jsonapi import Resource, collection, paginate, request_body, requested_page, resource, respond
from app.tfc_api.lookup import find_workspace_by_id
from app.tfc_api.schemas import plain_tags, tag_bindings
from app.tfc_api.serializers import tag_resource


def _items(body: dict) -> list:
    data = body.get("data")
    if not isinstance(data, list):
        raise InvalidInput('"data" must be a list')
    return data


@bp.route("/workspaces/<workspace_id>/relationships/tags")
def list_tags(workspace_id: str) -> Response:
    """The workspace's tags (every key, with or without a value)."""
    names = sorted(tags_of(find_workspace_by_id(workspace_id).workspace))
    page = requested_page()
    return collection([tag_resource(name) for name in paginate(names, page)], page, len(names))


@bp.route("/workspaces/<workspace_id>/relationships/tags", methods=["POST"])
def add_tags(workspace_id: str) -> Response:
    """Add plain tags (idempotent; a key that has a value keeps it); 204."""
    workspace = find_workspace_by_id(workspace_id, Action.WRITE).workspace
    added = plain_tags(_items(request_body()))
    update_workspace(workspace, caller().subject, tags=with_plain_tags(tags_of(workspace), added))
    return respond(None, 204)


@bp.route("/workspaces/<workspace_id>/relationships/tags", methods=["DELETE"])
def remove_tags(workspace_id: str) -> Response:
    """Remove tags by key; 204."""
    workspace = find_workspace_by_id(workspace_id, Action.WRITE).workspace
    doomed = plain_tags(_items(request_body()))
    update_workspace(workspace, caller().subject, tags=without(tags_of(workspace), doomed))
    return respond(None, 204)


@bp.route("/workspaces/<workspace_id>/tag-bindings")
def list_tag_bindings(workspace_id: str) -> Response:
    """The workspace's tags as key/value bindings (a plain tag has an empty value)."""
    return _bindings(find_workspace_by_id(workspace_id).workspace, "tag-bindings")


@bp.route("/workspaces/<workspace_id>/effective-tag-bindings")
def list_effective_tag_bindings(workspace_id: str) -> Response:
    """The same bindings: there are no projects to inherit from."""
    return _bindings(find_workspace_by_id(workspace_id).workspace, "effective-tag-bindings")


@bp.route("/workspaces/<workspace_id>/tag-bindings", methods=["PATCH"])
def patch_tag_bindings(workspace_id: str) -> Response:
    """Add bindings or change the values of existing keys (others stay); answers every binding."""
    workspace = find_workspace_by_id(workspace_id, Action.WRITE).workspace
    bindings = tag_bindings(_items(request_body()))
    if not bindings:
        raise InvalidInput("send at least one tag binding")
    update_workspace(workspace, caller().subject, tags=with_bindings(tags_of(workspace), bindings))
    return _bindings(workspace, "tag-bindings")


def _bindings(workspace: Workspace, kind: str) -> Response:
    items = [_binding(workspace, kind, key, value) for key, value in tags_of(workspace).items()]
    page = requested_page()
    return collection(paginate(items, page), page, len(items))


def _binding(workspace: Workspace, kind: str, key: str, value: str) -> Resource:
    # Bindings are rows keyed by (workspace, key); the id is derived from that key so it stays stable.
    digest = hashlib.sha256(f"{workspace.id}\0{key}".encode()).hexdigest()[:16]
    return resource(kind, f"tb-{digest}", {"key": key, "value": value})
