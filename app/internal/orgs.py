"""Organizations: sync from the identity provider (idempotent, by external id), create, list, show."""

from __future__ import annotations

from flask import Response, jsonify

from app.auth.access import may_see, visible_orgs
from app.auth.webhook import unknown_org
from app.core.errors import Conflict, Forbidden, NotFound
from app.internal import schemas
from app.internal.door import INTERNAL, Caller, caller, json_body, route
from app.internal.serializers import org_json
from app.models import Organization, User
from app.repositories import orgs, users


def _may_provision(current: Caller) -> None:
    # The UI's server holds the webhook secret and vouches for its users; through /v1 only administrators
    # (static users, or a server with authentication disabled) create organizations: tokens belong to one.
    if current.door != INTERNAL and not current.principal.superuser:
        raise Forbidden("creating or syncing organizations needs the internal API or an administrator login")


def _creator(current: Caller) -> User | None:
    return users.get_user_by_subject(current.principal.subject) if current.principal.user_id else None


@route("/orgs/sync", ["POST"], org_header=False)
def sync_org() -> tuple[Response, int]:
    """Create the organization keyed by ``external_org_id``, or report the existing one (display name updated)."""
    current = caller()
    _may_provision(current)
    body = json_body(schemas.OrgSync())
    org, created = orgs.sync_org(
        body["name"], body["display_name"], body["external_org_id"], _creator(current), current.principal.subject
    )
    return jsonify(status="created" if created else "existing", organization=org_json(org)), 201 if created else 200


@route("/orgs", ["POST"], org_header=False)
def create_org() -> tuple[Response, int]:
    """Create an organization (unique URL name derived from ``name``); the caller becomes its admin."""
    current = caller()
    _may_provision(current)
    body = json_body(schemas.OrgCreate())
    external_id = body.get("external_org_id") or None
    if external_id:
        existing = orgs.get_org_by_external_id(external_id)
        if existing is not None:
            raise Conflict(
                f"an organization with external id {external_id!r} already exists", organization=org_json(existing)
            )
    org = orgs.provision_org(
        body["name"], body.get("display_name") or "", external_id, _creator(current), current.principal.subject
    )
    return jsonify(org_json(org)), 201


@route("/orgs", ["GET"], org_header=False)
def list_orgs() -> Response:
    """The organizations the caller may see."""
    return jsonify(organizations=[org_json(org) for org in visible_orgs(caller().principal)])


@route("/orgs/<ref>", ["GET"], org_header=False)
def show_org(ref: str) -> Response:
    """One organization by id, name or external id; 404 when unknown or not visible."""
    current = caller()
    org: Organization | None = orgs.get_org(ref)
    if org is None or not may_see(current.principal, org):
        raise unknown_org(ref) if current.door == INTERNAL else NotFound(f"organization {ref!r} not found")
    return jsonify(org_json(org))
