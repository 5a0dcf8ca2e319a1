"""Errors of the agent API as JSON:API error documents (``{"errors": [{status,title,detail}]}``).

``render_error`` is the one rendering, used by this blueprint's handler and, for unmatched URLs and wrong methods
under the prefix, by the app-level handler. A 401 carries the Bearer challenge.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from flask import Response

from app.agent_api.blueprint import bp
from app.core.errors import StatesmanError

log = logging.getLogger("statesman.agent_api")

MEDIA_TYPE = "application/vnd.api+json"


def render_error(status: int, message: str) -> Response:
    """A JSON:API error document with one error."""
    body = {"errors": [{"status": str(status), "title": _title(status), "detail": message}]}
    response = Response(json.dumps(body, separators=(",", ":")), status=status, mimetype=MEDIA_TYPE)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="statesman-agents"'
    return response


@bp.errorhandler(StatesmanError)
def domain_error(error: StatesmanError) -> Response:
    """The error's status with its message (a lock conflict of a run's state write is a 409, as everywhere)."""
    status = 409 if error.status == 423 else error.status
    if status >= 500:
        log.error("%s: %s", type(error).__name__, error.message)
    return render_error(status, error.message)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
