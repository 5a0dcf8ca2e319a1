"""Workspaces: create, show (by name or id), update, delete, safe-delete and list with search and paging.

Execution modes: ``local`` always; ``remote`` and ``agent`` when remote runs are enabled (``RUNS_ENABLED``). The
older ``operations`` flag writes as TFE's does (true: ``remote``, false: ``local``). An ``agent`` workspace names
the organization's agent pool whose agents run it (``relationships.agent-pool`` or ``agent-pool-id``).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from marshmallow import ValidationError

from app.auth.access import Target
from app.auth.permissions import Action
from app.core.errors import InvalidInput
from app.models import Organization, Workspace
from app.repositories import state_versions as versions
from app.repositories.agent_pools import get_pool
from app.repositories.names import check_name
from app.repositories.tags import check_key, check_value, only_keys, tags_of, with_bindings, with_plain_tags
from app.repositories.workspaces import (
    create_workspace,
    get_workspaces_by_names,
    search_workspace_names,
    search_workspaces,
    update_workspace,
)
from app.tfc_api.blueprint import bp
from app.tfc_api.documents import render_workspace, render_workspaces
from app.tfc_api.jsonapi import attributes_of, collection, document, request_body, requested_page, respond
from app.tfc_api.lookup import VISIBLE, find_org, find_workspace, find_workspace_by_id
from app.tfc_api.schemas import (
    WorkspaceAttributes,
    load,
    plain_tags,
    relationship_id,
    relationship_list,
    tag_bindings,
)
from app.tfc_api.serializers import default_project_id

_SETTINGS = ("terraform_version", "auto_apply", "working_directory")
MAX_TAG_FILTERS = 50


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


def _settings(
    body: dict[str, Any], attributes: dict[str, Any], org: Organization, current: Workspace | None
) -> dict[str, Any]:
    settings = {key: attributes[key] for key in _SETTINGS if key in attributes}
    if settings.get("working_directory") is None:
        settings.pop("working_directory", None)
    return {**settings, **_execution(body, attributes, org, current)}


def _execution(
    body: dict[str, Any], attributes: dict[str, Any], org: Organization, current: Workspace | None
) -> dict[str, Any]:
    """The execution mode and agent pool a create or update asks for (``{}`` when it mentions neither)."""
    mode = _requested_mode(attributes)
    pool_ref = relationship_id(body, "agent-pool") or attributes.get("agent_pool_id")
    if mode is None and pool_ref is None:
        return {}
    effective = mode or (current.execution_mode if current is not None else "local")
    if effective != "agent":
        if pool_ref is not None:
            raise ValidationError({"agent-pool-id": ['an agent pool is only for execution-mode "agent"']})
        return {"execution_mode": effective, "agent_pool_id": None}
    pool_id = _pool_id(org, pool_ref) if pool_ref is not None else (current.agent_pool_id if current else None)
    if pool_id is None:
        raise ValidationError({"agent-pool-id": ['execution-mode "agent" needs an agent pool of the organization']})
    return {"execution_mode": "agent", "agent_pool_id": pool_id}


def _requested_mode(attributes: dict[str, Any]) -> str | None:
    """``execution-mode``, else what ``operations`` means (true: remote, false: local), as TFE reads them."""
    mode, operations = attributes.get("execution_mode"), attributes.get("operations")
    if mode is not None and operations is not None and operations != (mode != "local"):
        raise ValidationError({"operations": [f'contradicts execution-mode "{mode}"']})
    if mode is None and operations is not None:
        return "remote" if operations else "local"
    return str(mode) if mode is not None else None


def _pool_id(org: Organization, ref: str) -> str:
    pool = get_pool(org, ref)
    if pool is None:
        raise ValidationError({"agent-pool-id": [f"agent pool {ref!r} not found in organization {org.name!r}"]})
    return pool.id


@bp.route("/organizations/<org>/workspaces")
def list_workspaces(org: str) -> Response:
    """A page of workspaces by name: ``search[name]`` (prefix), ``search[tags]``, ``filter[project][id]``."""
    access = find_org(org)
    found = access.org
    page = requested_page()
    project = request.args.get("filter[project][id]")
    if project and project != default_project_id(found):
        return collection([], page, 0)
    tags, bindings = _tag_filters()
    prefix = request.args.get("search[name]") or None
    if access.sees_every_workspace(VISIBLE):
        items, total = search_workspaces(
            found, prefix=prefix, tags=tags, bindings=bindings, offset=page.offset, limit=page.size
        )
        return collection(render_workspaces(items), page, total)
    # RBAC rules are name globs, so a restricted caller's listing is filtered by name before paging: pages are full
    # and the total counts only what the caller may see.
    candidates = search_workspace_names(found, prefix=prefix, tags=tags, bindings=bindings)
    names = access.allowed_names(VISIBLE, candidates)
    shown = get_workspaces_by_names(found, names[page.offset : page.offset + page.size])
    return collection(render_workspaces(shown), page, len(names))


@bp.route("/organizations/<org>/workspaces", methods=["POST"])
def post_workspace(org: str) -> Response:
    """Create a workspace (201); the remote backend sends ``name`` and ``terraform-version``."""
    body = request_body()
    attributes = load(WorkspaceAttributes(), attributes_of(body))
    name = attributes.get("name")
    if not name:
        raise InvalidInput("data.attributes.name is required")
    access = find_org(org)
    access.require(Action.WRITE, name)
    tags = _tags_requested(body, attributes, {})
    settings = _settings(body, attributes, access.org, None)
    workspace = create_workspace(access.org, name, access.actor, tags=tags, **settings)
    return document(render_workspace(workspace), 201)


@bp.route("/organizations/<org>/workspaces/<name>")
def get_workspace(org: str, name: str) -> Response:
    """One workspace by name (or id)."""
    return document(render_workspace(find_workspace(find_org(org), name).workspace))


@bp.route("/workspaces/<workspace_id>")
def get_workspace_by_id(workspace_id: str) -> Response:
    """One workspace by id."""
    return document(render_workspace(find_workspace_by_id(workspace_id).workspace))


@bp.route("/organizations/<org>/workspaces/<name>", methods=["PATCH"])
def patch_workspace(org: str, name: str) -> Response:
    """Change settings and/or rename."""
    return _update(find_workspace(find_org(org), name, Action.WRITE))


@bp.route("/workspaces/<workspace_id>", methods=["PATCH"])
def patch_workspace_by_id(workspace_id: str) -> Response:
    """Change settings and/or rename, by id."""
    return _update(find_workspace_by_id(workspace_id, Action.WRITE))


def _update(target: Target) -> Response:
    workspace = target.workspace
    body = request_body()
    attributes = load(WorkspaceAttributes(), attributes_of(body))
    tags = _tags_requested(body, attributes, tags_of(workspace))
    name = attributes.get("name") or None
    if name is not None and name != workspace.name:
        # A rename writes under the new name too: "dev-* only" must not become "prod-app".
        target.access.require(Action.WRITE, check_name("workspace", name))
    settings = _settings(body, attributes, workspace.organization, workspace)
    update_workspace(workspace, target.actor, name=name, tags=tags, **settings)
    return document(render_workspace(workspace))


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


def _delete(target: Target, safe: bool) -> Response:
    versions.delete_workspace(target, safe=safe)
    return respond(None, 204)
