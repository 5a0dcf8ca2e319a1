"""The audit log of an organization: filters by unit, user, action and time range, newest first, paginated."""

from __future__ import annotations

from flask import Response, jsonify

from app.auth.permissions import Action
from app.core.errors import Forbidden
from app.internal import schemas
from app.internal.door import query, requested_page, require_access, route
from app.internal.serializers import event_json
from app.repositories.audit import search_events
from app.repositories.workspaces import get_workspace_by_ref


@route("/audit", ["GET"])
def list_events() -> Response:
    """``?unit=&user=&action=&since=&until=&page=&page_size=``.

    The whole log needs ``rbac.manage``; with ``unit`` (id or name) reading that unit (``unit.read``) is enough.
    """
    access = require_access()
    org = access.org
    params = query(schemas.AuditQuery())
    page = requested_page()
    unit = params.get("unit")
    workspace = get_workspace_by_ref(org, unit) if unit else None
    unit_name = workspace.name if workspace is not None else unit
    if not access.allows(Action.MANAGE):
        # Without rbac.manage, a member reads the history of a unit they can read, and nothing else.
        if not unit_name:
            raise Forbidden(
                "reading the whole audit log needs rbac.manage; add ?unit=<unit> to read the history of one unit"
            )
        access.require(Action.READ, unit_name)
    since = schemas.parse_timestamp(params["since"], "since") if params.get("since") else None
    until = schemas.parse_timestamp(params["until"], "until") if params.get("until") else None
    events, total = search_events(
        org.id,
        workspace_id=workspace.id if workspace is not None else None,
        workspace_name=unit_name,
        actor=params.get("user"),
        action=params.get("action"),
        since=since,
        until=until,
        offset=page.offset,
        limit=page.size,
    )
    return jsonify(
        events=[event_json(e) for e in events], count=len(events), total=total, page=page.number, page_size=page.size
    )
