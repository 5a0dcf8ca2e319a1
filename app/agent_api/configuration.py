"""The configuration archive (``.tar.gz``) a job executes."""

from __future__ import annotations

from itertools import chain

from flask import Response

from app.agent_api.blueprint import bp
from app.agent_api.context import leased_job
from app.repositories import runs


@bp.route("/jobs/<lease_id>/configuration")
def configuration(lease_id: str) -> Response:
    """The run's configuration version's archive, streamed."""
    stream = runs.open_configuration(leased_job(lease_id))
    first = next(stream, b"")  # decrypt the first piece now, so a key problem is an error status, not a cut body
    return Response(chain([first], stream), mimetype="application/gzip")
