"""The workspace's state: the current one a job starts from, and the one an apply produced."""

from __future__ import annotations

from itertools import chain

from flask import Response, jsonify

from app.agent_api.blueprint import bp
from app.agent_api.context import current_agent, leased_job
from app.extensions import config
from app.repositories import runs
from app.web.request_body import receive_state


@bp.route("/jobs/<lease_id>/state")
def current_state(lease_id: str) -> Response:
    """The current state's exact bytes (200), or 204 before the workspace's first state."""
    stream = runs.current_state(leased_job(lease_id))
    if stream is None:
        return Response(status=204)
    first = next(stream, b"")
    return Response(chain([first], stream), mimetype="application/json")


@bp.route("/jobs/<lease_id>/state", methods=["PUT"])
def store_state(lease_id: str) -> Response:
    """The state the apply wrote, stored as the workspace's new version (attributed to the run)."""
    job = leased_job(lease_id)
    with receive_state(config().max_state_size) as body:
        version = runs.write_run_state(job, body, current_agent().subject)
    return jsonify({"state_version_id": version.id, "serial": version.serial})
