"""Jobs: claiming the next one, renewing its lease, and finishing it."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from app.agent_api.blueprint import bp
from app.agent_api.context import MAX_AGENT_NAME, agent_identity, job_document, leased_job
from app.core.errors import InvalidInput
from app.core.json_input import parse_json
from app.extensions import config
from app.repositories import runs
from app.web import request_log
from app.web.request_body import read_small_body

SMALL_BODY_LIMIT = 64 * 1024
MAX_ERROR = 1024
OUTCOMES = ("finished", "errored", "canceled")


def _body() -> dict[str, Any]:
    raw = read_small_body(SMALL_BODY_LIMIT)
    found = parse_json(raw) if raw.strip() else {}
    if not isinstance(found, dict):
        raise InvalidInput("the request body must be a JSON object")
    return found


def _agent_name(body: dict[str, Any]) -> str:
    name = body.get("agent")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_AGENT_NAME or not name.isprintable():
        raise InvalidInput(f'"agent" must name the agent: 1-{MAX_AGENT_NAME} printable characters')
    return name


@bp.route("/jobs/claim", methods=["POST"])
def claim_job() -> Response:
    """The oldest queued phase this agent may run, leased to it (200), or 204 when there is none."""
    name = _agent_name(_body())
    job = runs.claim_job(agent_identity(name))
    if job is None:
        request_log.idle_poll()
        return Response(status=204)
    settings = config()
    return jsonify(job_document(job, settings.run_lease_seconds, settings.run_timeout_seconds))


@bp.route("/jobs/<lease_id>/heartbeat", methods=["POST"])
def heartbeat(lease_id: str) -> Response:
    """Renew the lease; the answer says whether the run's cancel was requested."""
    job = leased_job(lease_id)
    answer = runs.heartbeat(job)
    # A force-cancel ends the lease, so a force-canceled job hears 409 here; the flag is for agents that ask.
    return jsonify({**answer, "force_cancel": job.run.force_canceled_at is not None})


@bp.route("/jobs/<lease_id>/finish", methods=["POST"])
def finish_job(lease_id: str) -> Response:
    """End the phase: ``{"outcome": "finished"|"errored"|"canceled", "error": str|null}``."""
    job = leased_job(lease_id)
    body = _body()
    outcome, error = body.get("outcome"), body.get("error")
    if outcome not in OUTCOMES:
        raise InvalidInput('"outcome" must be "finished", "errored" or "canceled"')
    if error is not None and not isinstance(error, str):
        raise InvalidInput('"error" must be a string or null')
    run = runs.finish_phase(job, outcome, error[:MAX_ERROR] if error else None)
    return jsonify({"run_id": run.id, "status": run.status})
