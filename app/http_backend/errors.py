"""Errors in the shapes Terraform's http backend client expects."""

from __future__ import annotations

import json

from flask import Response, jsonify, request

from app.core.errors import LockConflict, StatesmanError, Unauthenticated
from app.http_backend import bp

# LOCK answers a conflict with 423 and the holder's LockInfo as the whole body: Terraform reads "ID" from it.
_RAW_HOLDER_STATUS = {
    "http_backend.lock": 423,
    "http_backend.unit_lock": 423,
    "http_backend.unlock": 409,
    "http_backend.unit_unlock": 409,
}


@bp.errorhandler(LockConflict)
def lock_conflict(error: LockConflict) -> Response:
    """423/409 with the holder's LockInfo, exactly as it was stored."""
    status = _RAW_HOLDER_STATUS.get(request.endpoint or "")
    if status is not None:
        return Response(error.holder.info, status=status, mimetype="application/json")
    response = jsonify(error=error.message, lock=_holder_json(error.holder.info))
    response.status_code = 409
    return response


@bp.errorhandler(StatesmanError)
def domain_error(error: StatesmanError) -> Response:
    """``{"error": message}`` with the error's status; 401s carry the Basic challenge."""
    response = jsonify(error=error.message)
    response.status_code = error.status
    if isinstance(error, Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Basic realm="statesman"'
    return response


def _holder_json(info: str) -> object:
    try:
        return json.loads(info)
    except ValueError:
        return info
