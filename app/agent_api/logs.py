"""A job's log: the agent appends Terraform's (redacted) output as it comes."""

from __future__ import annotations

from flask import Response

from app.agent_api.blueprint import bp
from app.agent_api.context import leased_job
from app.repositories import runs
from app.web.request_body import read_small_body

# One request carries one piece of streamed output (the agent sends at most 64 KiB); the bound keeps a request
# from holding more than that in memory many times over.
MAX_LOG_REQUEST = 1024 * 1024


@bp.route("/jobs/<lease_id>/logs", methods=["POST"])
def append_log(lease_id: str) -> Response:
    """Append the raw body to the phase's log."""
    job = leased_job(lease_id)
    data = read_small_body(MAX_LOG_REQUEST)
    if data:
        runs.append_log(job, data)
    return Response(status=204)
