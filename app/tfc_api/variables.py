"""Workspace variables (TFE ``workspaces/:id/vars``): Terraform and environment variables the workspace's runs get.

Reading them needs ``unit.read`` (the same as reading the state, which they often configure), changing them
``unit.write``. A sensitive variable is answered with ``value: null``, always.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from app.auth.permissions import Action
from app.core.errors import InvalidInput
from app.models import WorkspaceVariable
from app.repositories import variables
from app.tfc_api.blueprint import bp
from app.tfc_api.jsonapi import (
    Resource,
    attributes_of,
    collection,
    data_of,
    document,
    paginate,
    ref,
    request_body,
    requested_page,
    resource,
    respond,
    rfc3339,
)
from app.tfc_api.lookup import find_workspace_by_id

TYPE = "vars"
_FIELDS = {"key": str, "value": str, "category": str, "description": str, "hcl": bool, "sensitive": bool}


def _resource(variable: WorkspaceVariable) -> Resource:
    owner = ref("workspaces", variable.workspace_id)
    return resource(
        TYPE,
        variable.id,
        {
            "key": variable.key,
            "value": variables.shown_value(variable),
            "sensitive": variable.sensitive,
            "category": variable.category,
            "hcl": variable.hcl,
            "description": variable.description,
            "created-at": rfc3339(variable.created_at),
            "version-id": str(variable.version),
        },
        {
            "configurable": owner,
            "workspace": owner,
        },
    )


def _attributes(*, creating: bool) -> dict[str, Any]:
    body = request_body()
    if data_of(body).get("type") not in (None, "", TYPE):
        raise InvalidInput(f'data.type must be "{TYPE}"')
    given = attributes_of(body)
    found: dict[str, Any] = {}
    for name, kind in _FIELDS.items():
        if name not in given or (given[name] is None and name in ("value", "description")):
            continue
        value = given[name]
        if not isinstance(value, kind):
            raise InvalidInput(f"data.attributes.{name} must be a {'string' if kind is str else 'boolean'}")
        found[name] = value
    if creating:
        for required in ("key", "category"):
            if required not in found:
                raise InvalidInput(f"data.attributes.{required} is required")
    return found


@bp.route("/workspaces/<workspace_id>/vars")
def list_variables(workspace_id: str) -> Response:
    """Every variable of the workspace (sensitive values null)."""
    target = find_workspace_by_id(workspace_id, Action.READ)
    found = variables.list_variables(target.workspace)
    page = requested_page()
    return collection([_resource(v) for v in paginate(found, page)], page, len(found))


@bp.route("/workspaces/<workspace_id>/vars", methods=["POST"])
def create_variable(workspace_id: str) -> Response:
    """A new variable (201)."""
    target = find_workspace_by_id(workspace_id, Action.WRITE)
    attributes = _attributes(creating=True)
    attributes.setdefault("value", "")
    return document(_resource(variables.create_variable(target, **attributes)), 201)


@bp.route("/workspaces/<workspace_id>/vars/<variable_id>")
def show_variable(workspace_id: str, variable_id: str) -> Response:
    """One variable."""
    target = find_workspace_by_id(workspace_id, Action.READ)
    return document(_resource(variables.get_variable(target.workspace, variable_id)))


@bp.route("/workspaces/<workspace_id>/vars/<variable_id>", methods=["PATCH"])
def update_variable(workspace_id: str, variable_id: str) -> Response:
    """Change the attributes that are given."""
    target = find_workspace_by_id(workspace_id, Action.WRITE)
    variable = variables.get_variable(target.workspace, variable_id)
    return document(_resource(variables.update_variable(target, variable, **_attributes(creating=False))))


@bp.route("/workspaces/<workspace_id>/vars/<variable_id>", methods=["DELETE"])
def delete_variable(workspace_id: str, variable_id: str) -> Response:
    """Remove a variable (204)."""
    target = find_workspace_by_id(workspace_id, Action.WRITE)
    variables.delete_variable(target, variables.get_variable(target.workspace, variable_id))
    return respond(None, 204)
