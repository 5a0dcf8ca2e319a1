"""Projects: one synthesized default project per organization (the schema has no project table).

Enough for the cloud block: ``project = "Default Project"`` (or no project) resolves, and workspace lists filtered
by its id list every workspace. Creating another project is refused with a message that says so.
"""

from __future__ import annotations

from flask import Response, request

from app.auth.permissions import Action
from app.core.errors import InvalidInput, NotFound
from app.repositories.workspaces import count_workspaces
from app.tfc_api.blueprint import bp
from app.tfc_api.jsonapi import attributes_of, collection, document, request_body, requested_page
from app.tfc_api.lookup import find_org
from app.tfc_api.serializers import DEFAULT_PROJECT_NAME, org_id_of_project, project_resource


class UnprocessableProject(InvalidInput):
    """A project this server cannot create."""

    status = 422


def _name_filter() -> list[str]:
    names = request.args.get("filter[names]") or request.args.get("q") or ""
    return [name.strip() for name in names.split(",") if name.strip()]


@bp.route("/organizations/<org>/projects")
def list_projects(org: str) -> Response:
    """The default project (``filter[names]`` / ``q`` that do not match it give an empty list)."""
    found = find_org(org).org
    names = _name_filter()
    items = [] if names and DEFAULT_PROJECT_NAME not in names else [project_resource(found, count_workspaces(found))]
    return collection(items, requested_page(), len(items))


@bp.route("/organizations/<org>/projects", methods=["POST"])
def create_project(org: str) -> Response:
    """Idempotent for the default project's name; any other name is refused (422)."""
    found = find_org(org, Action.WRITE).org
    name = attributes_of(request_body()).get("name")
    if name != DEFAULT_PROJECT_NAME:
        raise UnprocessableProject(
            f"this server keeps one project per organization, {DEFAULT_PROJECT_NAME!r}; "
            f"use project = {DEFAULT_PROJECT_NAME!r} or leave the project out"
        )
    return document(project_resource(found, count_workspaces(found)), 201)


@bp.route("/projects/<project_id>")
def show_project(project_id: str) -> Response:
    """The default project by id."""
    try:
        found = find_org(org_id_of_project(project_id)).org
    except NotFound:
        raise NotFound(f"project {project_id!r} not found") from None
    return document(project_resource(found, count_workspaces(found)))
