"""Errors in the shapes Terraform's http backend client expects: ``{"error": message}``.

``render_error`` is the one rendering, used by this blueprint's handlers and, for unmatched URLs and wrong methods
under ``/state`` and ``/v1/backend``, by the app-level handler.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, jsonify, request

from app.core.errors import LockConflict, StatesmanError
from app.http_backend.blueprint import bp

# LOCK answers a conflict with 423 and the holder's LockInfo as the whole body: Terraform reads "ID" from it.
_RAW_HOLDER_STATUS = {"lock": 423, "unit_lock": 423, "unlock": 409, "unit_unlock": 409}


def render_error(status: int, message: str, **details: Any) -> Response:
    """``{"error": message, **details}`` with ``status``; a 401 carries the Basic challenge."""
    response = jsonify(error=message, **details)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="statesman"'
    return response


@bp.errorhandler(LockConflict)
def lock_conflict(error: LockConflict) -> Response:
    """423/409 with the holder's LockInfo, exactly as it was stored."""
    status = _RAW_HOLDER_STATUS.get((request.endpoint or "").rpartition(".")[2])
    if status is not None:
        return Response(error.holder.info, status=status, mimetype="application/json")
    return render_error(409, error.message, lock=_holder_json(error.holder.info))


@bp.errorhandler(StatesmanError)
def domain_error(error: StatesmanError) -> Response:
    """``{"error": message}`` with the error's status."""
    return render_error(error.status, error.message)


def _holder_json(info: str) -> object:
    try:
        return json.loads(info)
    except ValueError:
        return info
