"""Errors of the management API: ``{"error": message, "message": message}`` JSON (plus details such as the lock holder).

``error`` carries the message itself (the UI and the spec read ``{"error": "invalid webhook secret"}``);
``message`` repeats it for clients that read that field. ``render_error`` is the one rendering, used by this
blueprint's handlers and, for unmatched URLs and wrong methods under both doors, by the app-level handler.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from app.core.errors import LockConflict, StatesmanError
from app.internal.blueprint import bp
from app.internal.serializers import lock_json


def render_error(status: int, message: str, **details: Any) -> Response:
    """``{"error": message, "message": message, **details}`` with ``status``; a 401 carries the Bearer challenge."""
    response = jsonify(error=message, message=message, **details)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="statesman"'
    return response


@bp.errorhandler(LockConflict)
def lock_conflict(error: LockConflict) -> Response:
    """409 with the holder's lock, whichever API took it."""
    return render_error(409, error.message, lock=lock_json(error.holder))


@bp.errorhandler(StatesmanError)
def domain_error(error: StatesmanError) -> Response:
    """The error's status with its message; extra details (such as an existing organization) are included."""
    return render_error(error.status, error.message, **error.details)
