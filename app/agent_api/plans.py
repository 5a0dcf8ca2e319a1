"""The saved plan of a run (written by its plan phase, read by its apply phase) and its JSON."""

from __future__ import annotations

from itertools import chain

from flask import Response

from app.agent_api.blueprint import bp
from app.agent_api.context import leased_job
from app.extensions import config
from app.repositories import runs
from app.web.request_body import read_small_body, request_chunks


@bp.route("/jobs/<lease_id>/plan-file")
def plan_file(lease_id: str) -> Response:
    """The saved plan the apply phase applies, streamed."""
    stream = runs.open_plan_file(leased_job(lease_id))
    first = next(stream, b"")
    return Response(chain([first], stream), mimetype="application/octet-stream")


@bp.route("/jobs/<lease_id>/plan-file", methods=["PUT"])
def store_plan_file(lease_id: str) -> Response:
    """The plan phase's saved plan (``terraform plan -out``), at most ``MAX_STATE_SIZE``."""
    job = leased_job(lease_id)
    limit = config().max_state_size
    runs.store_plan_file(job, request_chunks(limit), limit)
    return Response(status=204)


@bp.route("/jobs/<lease_id>/plan-json", methods=["PUT"])
def store_plan_json(lease_id: str) -> Response:
    """``terraform show -json`` of the saved plan, at most ``MAX_STATE_SIZE``: the run's change counts come from it."""
    job = leased_job(lease_id)
    runs.store_plan_json(job, read_small_body(config().max_state_size))
    return Response(status=204)
