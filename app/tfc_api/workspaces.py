"""Workspaces: create, show (by name or id), update, delete, safe-delete and list with search and paging."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from app.auth.permissions import Action, allowed_names, authorize, sees_every_workspace
from app.core.errors import Conflict, InvalidInput, LockConflict
from app.core.locks import HeldLock
from app.models import StateVersion, Workspace
from app.repositories.audit import record_event
from app.repositories.locks import get_lock
from app.repositories.names import check_name
from app.repositories.state_versions import delete_workspace_state, get_current_version, get_versions_by_ids
from app.repositories.tags import check_key, check_value, only_keys, tags_of, with_bindings, with_plain_tags
from app.repositories.workspaces import (
    create_workspace,
    get_workspaces_by_names,
    search_workspace_names,
    search_workspaces,
    update_workspace,
)
from app.tfc_api.blueprint import bp
from app.tfc_api.context import caller
from app.tfc_api.jsonapi import Resource, attributes_of, collection, document, request_body, requested_page, respond
from app.tfc_api.locking import LOCK_ID_PREFIX, describe, lock_details
from app.tfc_api.lookup import VISIBLE, find_org, find_workspace, find_workspace_by_id
from app.tfc_api.schemas import WorkspaceAttributes, load, plain_tags, relationship_list, tag_bindings
from app.tfc_api.serializers import default_project_id, workspace_resource

_SETTINGS = ("terraform_version", "auto_apply", "working_directory", "execution_mode")
MAX_TAG_FILTERS = 50


def render(workspace: Workspace) -> Resource:
    """One workspace with its current version and lock."""
    return _resource(workspace, get_current_version(workspace), get_lock(workspace))


def render_many(workspaces: list[Workspace]) -> list[Resource]:
    """Several workspaces, their current versions fetched in one query."""
    versions = get_versions_by_ids([w.current_version_id for w in workspaces if w.current_version_id])
    return [_resource(w, versions.get(w.current_version_id or ""), get_lock(w)) for w in workspaces]


def _resource(workspace: Workspace, current: StateVersion | None, holder: HeldLock | None) -> Resource:
    info = lock_details(holder) if holder else {}
    locked_by = info.get("UserID") if holder and holder.lock_id.startswith(LOCK_ID_PREFIX) else None
    return workspace_resource(workspace, current, holder, locked_by, str(info.get("Info") or ""))


def _tags_requested(body: dict[str, Any], attributes: dict[str, Any], current: dict[str, str]) -> dict[str, str] | None:
    """The tag set a create or update asks for, or None when it does not mention tags.

    ``tag-names`` is the whole set of keys (values of kept keys stay), ``relationships.tags`` adds plain tags, and
    ``relationships.tag-bindings`` replaces the set with its bindings (go-tfe's update and DeleteAllTagBindings).
    """
    names, plain, bindings = attributes.get("tag_names"), relationship_list(body, "tags"), None
    listed = relationship_list(body, "tag-bindings")
    if listed is not None:
        bindings = tag_bindings(listed)
    if names is None and plain is None and bindings is None:
        return None
    wanted = only_keys(current, names) if names is not None else ({} if bindings is not None else dict(current))
    if plain is not None:
        wanted = with_plain_tags(wanted, plain_tags(plain))
    return with_bindings(wanted, bindings or {})


def _tag_filters() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """``search[tags]=a,b`` (keys) and ``filter[tagged][i][key|value]`` (bindings) of a listing."""
    keys = tuple(check_key(t.strip()) for t in (request.args.get("search[tags]") or "").split(",") if t.strip())
    bindings = []
    for index in range(MAX_TAG_FILTERS + 1):
        key = request.args.get(f"filter[tagged][{index}][key]")
        if key is None:
            break
        if index == MAX_TAG_FILTERS:
            raise InvalidInput(f"at most {MAX_TAG_FILTERS} filter[tagged] entries")
        bindings.append((check_key(key), check_value(request.args.get(f"filter[tagged][{index}][value]"))))
    return keys, tuple(bindings)


def _settings(attributes: dict[str, Any]) -> dict[str, Any]:
    settings = {key: attributes[key] for key in _SETTINGS if key in attributes}
    if settings.get("working_directory") is None:
        settings.pop("working_directory", None)
    if settings.get("execution_mode") is None:
        settings.pop("execution_mode", None)
    return settings


@bp.route("/organizations/<org>/workspaces")
def list_workspaces(org: str) -> Response:
    """A page of workspaces by name: ``search[name]`` (prefix), ``search[tags]``, ``filter[project][id]``."""
    found = find_org(org)
    page = requested_page()
    project = request.args.get("filter[project][id]")
    if project and project != default_project_id(found):
        return collection([], page, 0)
    tags, bindings = _tag_filters()
    prefix = request.args.get("search[name]") or None
    if sees_every_workspace(caller(), found, VISIBLE):
        items, total = search_workspaces(
            found, prefix=prefix, tags=tags, bindings=bindings, offset=page.offset, limit=page.size
        )
        return collection(render_many(items), page, total)
    # RBAC rules are name globs, so a restricted caller's listing is filtered by name before paging: pages are full
    # and the total counts only what the caller may see.
    candidates = search_workspace_names(found, prefix=prefix, tags=tags, bindings=bindings)
    names = allowed_names(caller(), found, VISIBLE, candidates)
    shown = get_workspaces_by_names(found, names[page.offset : page.offset + page.size])
    return collection(render_many(shown), page, len(names))


@bp.route("/organizations/<org>/workspaces", methods=["POST"])
def post_workspace(org: str) -> Response:
    """Create a workspace (201); the remote backend sends ``name`` and ``terraform-version``."""
    body = request_body()
    attributes = load(WorkspaceAttributes(), attributes_of(body))
    name = attributes.get("name")
    if not name:
        raise InvalidInput("data.attributes.name is required")
    found = find_org(org, Action.WRITE, name)
    actor = caller().subject
    tags = _tags_requested(body, attributes, {})
    workspace = create_workspace(found, name, actor, tags=tags, **_settings(attributes))
    record_event("workspace.create", "ok", actor, workspace=workspace)
    return document(render(workspace), 201)


@bp.route("/organizations/<org>/workspaces/<name>")
def get_workspace(org: str, name: str) -> Response:
    """One workspace by name (or id)."""
    return document(render(find_workspace(find_org(org), name)))


@bp.route("/workspaces/<workspace_id>")
def get_workspace_by_id(workspace_id: str) -> Response:
    """One workspace by id."""
    return document(render(find_workspace_by_id(workspace_id)))


@bp.route("/organizations/<org>/workspaces/<name>", methods=["PATCH"])
def patch_workspace(org: str, name: str) -> Response:
    """Change settings and/or rename."""
    return _update(find_workspace(find_org(org), name, Action.WRITE))


@bp.route("/workspaces/<workspace_id>", methods=["PATCH"])
def patch_workspace_by_id(workspace_id: str) -> Response:
    """Change settings and/or rename, by id."""
    return _update(find_workspace_by_id(workspace_id, Action.WRITE))


def _update(workspace: Workspace) -> Response:
    body = request_body()
    attributes = load(WorkspaceAttributes(), attributes_of(body))
    tags = _tags_requested(body, attributes, tags_of(workspace))
    name = attributes.get("name") or None
    if name is not None and name != workspace.name:
        # A rename writes under the new name too: "dev-* only" must not become "prod-app".
        authorize(caller(), workspace.organization, Action.WRITE, check_name("workspace", name))
    update_workspace(workspace, caller().subject, name=name, tags=tags, **_settings(attributes))
    return document(render(workspace))


@bp.route("/organizations/<org>/workspaces/<name>", methods=["DELETE"])
def delete_workspace(org: str, name: str) -> Response:
    """Delete the workspace and every state version (refused while locked)."""
    return _delete(find_workspace(find_org(org), name, Action.DELETE), safe=False)


@bp.route("/workspaces/<workspace_id>", methods=["DELETE"])
def delete_workspace_by_id(workspace_id: str) -> Response:
    """Delete by id."""
    return _delete(find_workspace_by_id(workspace_id, Action.DELETE), safe=False)


@bp.route("/organizations/<org>/workspaces/<name>/actions/safe-delete", methods=["POST"])
def safe_delete_workspace(org: str, name: str) -> Response:
    """Delete only when the current state manages no resources."""
    return _delete(find_workspace(find_org(org), name, Action.DELETE), safe=True)


@bp.route("/workspaces/<workspace_id>/actions/safe-delete", methods=["POST"])
def safe_delete_workspace_by_id(workspace_id: str) -> Response:
    """Safe-delete by id."""
    return _delete(find_workspace_by_id(workspace_id, Action.DELETE), safe=True)


def _delete(workspace: Workspace, safe: bool) -> Response:
    holder = get_lock(workspace)
    if holder is not None:
        raise LockConflict(f"workspace {workspace.name!r} is locked by {describe(holder)}; unlock it first", holder)
    current = get_current_version(workspace)
    if safe and current is not None and current.resource_count > 0:
        raise Conflict(
            f"workspace {workspace.name!r} still manages {current.resource_count} resource(s); destroy "
            "them first, or delete the workspace without safe-delete"
        )
    delete_workspace_state(workspace, caller().subject)
    return respond(None, 204)
