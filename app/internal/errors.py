"""Errors of the management API: ``{"error","message"}`` JSON (plus the lock holder on lock conflicts).

``error`` carries the message itself (the UI and the spec read ``{"error": "invalid webhook secret"}``);
``message`` repeats it for clients written against the app-level error shape.
"""

from __future__ import annotations

from flask import Response, jsonify

from app.core.errors import LockConflict, StatesmanError, Unauthenticated
from app.internal import bp
from app.internal.serializers import lock_json


@bp.errorhandler(LockConflict)
def lock_conflict(error: LockConflict) -> Response:
    """409 with the holder's lock, whichever API took it."""
    response = jsonify(error=error.message, message=error.message, lock=lock_json(error.holder))
    response.status_code = 409
    return response


@bp.errorhandler(StatesmanError)
def domain_error(error: StatesmanError) -> Response:
    """The error's status with its message; extra details (such as an existing organization) are included."""
    response = jsonify(error=error.message, message=error.message, **error.details)
    response.status_code = error.status
    if isinstance(error, Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="statesman"'
    return response
