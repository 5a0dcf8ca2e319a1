"""Agent pools (TFE ``organizations/:name/agent-pools`` and ``agent-pools/:id``), managed with ``rbac.manage``.

Every pool serves the whole organization: ``organization-scoped`` is always true, and a request for a pool limited to
some workspaces is refused rather than quietly widened. ``agent-count`` is 0 until agents register with the runs
work.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from app.auth.permissions import Action
from app.core.errors import InvalidInput
from app.repositories.agent_pools import create_pool, delete_pool, list_pools, rename_pool
from app.tfc_api.blueprint import bp
from app.tfc_api.jsonapi import (
    attributes_of,
    collection,
    data_of,
    document,
    paginate,
    request_body,
    requested_page,
    respond,
)
from app.tfc_api.lookup import find_agent_pool, find_org
from app.tfc_api.serializers import agent_pool_resource

TYPE = "agent-pools"


def _attributes() -> dict[str, Any]:
    body = request_body()
    if data_of(body).get("type") not in (None, "", TYPE):
        raise InvalidInput(f'data.type must be "{TYPE}"')
    attributes = attributes_of(body)
    name = attributes.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidInput("data.attributes.name must be a string")
    if attributes.get("organization-scoped", True) is not True:
        raise InvalidInput(
            "organization-scoped must be true: agent pools serve every workspace of their organization here"
        )
    return attributes


@bp.route("/organizations/<org>/agent-pools", methods=["GET"])
def list_agent_pools(org: str) -> Response:
    """The organization's pools by name (``q`` narrows by name)."""
    found = find_org(org, Action.MANAGE).org
    pools = list_pools(found)
    query = request.args.get("q")
    if query:
        pools = [pool for pool in pools if query.lower() in pool.name.lower()]
    page = requested_page()
    return collection([agent_pool_resource(p, found) for p in paginate(pools, page)], page, len(pools))


@bp.route("/organizations/<org>/agent-pools", methods=["POST"])
def create_agent_pool(org: str) -> Response:
    """A new pool (201); 409 when the name is taken in the organization."""
    found = find_org(org, Action.MANAGE)
    name = _attributes().get("name")
    if not name:
        raise InvalidInput("data.attributes.name is required")
    pool = create_pool(found.org, name, found.actor)
    return document(agent_pool_resource(pool, found.org), status=201)


@bp.route("/agent-pools/<pool_id>", methods=["GET"])
def show_agent_pool(pool_id: str) -> Response:
    """One pool by id."""
    found, pool = find_agent_pool(pool_id)
    return document(agent_pool_resource(pool, found.org))


@bp.route("/agent-pools/<pool_id>", methods=["PATCH"])
def update_agent_pool(pool_id: str) -> Response:
    """Rename a pool."""
    found, pool = find_agent_pool(pool_id)
    name = _attributes().get("name")
    if name:
        rename_pool(pool, name, found.actor)
    return document(agent_pool_resource(pool, found.org))


@bp.route("/agent-pools/<pool_id>", methods=["DELETE"])
def delete_agent_pool(pool_id: str) -> Response:
    """Delete a pool and its agent tokens (204)."""
    found, pool = find_agent_pool(pool_id)
    delete_pool(pool, found.actor)
    return respond(None, 204)
