"""Organizations (by name, id or external id) and their entitlement set."""

from __future__ import annotations

from flask import Response, request

from app.auth.access import may_see, visible_orgs
from app.auth.permissions import Action
from app.auth.principal import Principal
from app.core.errors import Forbidden, InvalidInput
from app.models import Organization
from app.repositories.orgs import create_org, delete_org, rename_org
from app.tfc_api.blueprint import bp
from app.tfc_api.context import caller, org_scope
from app.tfc_api.jsonapi import attributes_of, collection, document, paginate, request_body, requested_page, respond
from app.tfc_api.lookup import find_org
from app.tfc_api.schemas import OrganizationAttributes, load
from app.tfc_api.serializers import entitlements_resource, org_resource


def _listed_orgs(principal: Principal) -> list[Organization]:
    """The visible organizations; on the UI proxy's door only the one it acts in (``X-Org-ID``)."""
    scope = org_scope()
    if scope is not None:
        return [scope] if may_see(principal, scope) else []
    return visible_orgs(principal)


@bp.route("/organizations")
def list_organizations() -> Response:
    """The visible organizations (``q`` narrows by name)."""
    orgs = _listed_orgs(caller())
    query = request.args.get("q") or request.args.get("search[name]")
    if query:
        orgs = [org for org in orgs if query.lower() in org.name.lower()]
    page = requested_page()
    return collection([org_resource(org) for org in paginate(orgs, page)], page, len(orgs))


@bp.route("/organizations", methods=["POST"])
def create_organization() -> Response:
    """Create an organization: site administrators only (authentication disabled, static users)."""
    principal = caller()
    if not principal.superuser:
        raise Forbidden(
            "only a site administrator may create organizations here; use `flask orgs create` or the web UI"
        )
    name = load(OrganizationAttributes(), attributes_of(request_body())).get("name")
    if not name:
        raise InvalidInput("data.attributes.name is required")
    org = create_org(name, created_by=principal.subject)
    return document(org_resource(org), 201)


@bp.route("/organizations/<org>")
def show_organization(org: str) -> Response:
    """One organization by name, id or external id."""
    return document(org_resource(find_org(org).org))


@bp.route("/organizations/<org>", methods=["PATCH"])
def update_organization(org: str) -> Response:
    """Rename an organization (other TFE settings are accepted and ignored)."""
    found = find_org(org, Action.MANAGE).org
    name = load(OrganizationAttributes(), attributes_of(request_body())).get("name")
    if name:
        rename_org(found, name, caller().subject)
    return document(org_resource(found))


@bp.route("/organizations/<org>", methods=["DELETE"])
def delete_organization(org: str) -> Response:
    """Delete an organization that has no workspaces left."""
    delete_org(find_org(org, Action.MANAGE).org, caller().subject)
    return respond(None, 204)


@bp.route("/organizations/<org>/entitlement-set")
def entitlement_set(org: str) -> Response:
    """What this server offers the organization (404 for an unknown or invisible one)."""
    return document(entitlements_resource(find_org(org).org))
