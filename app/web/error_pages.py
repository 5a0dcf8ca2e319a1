"""App-level error handling: the error shape is picked by the request path (one protocol per API)."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from app.core.errors import BackendUnavailable, StatesmanError

log = logging.getLogger("statesman.errors")

TFC_PREFIXES = ("/api/v2", "/tfe/api/v2", "/internal/tfe/api/v2")


def error_response(status: int, title: str, message: str) -> Response:
    """An error in the shape of the API the request path belongs to."""
    path = request.path
    if path.startswith(TFC_PREFIXES):
        response = jsonify(errors=[{"status": str(status), "title": title, "detail": message}])
        response.mimetype = "application/vnd.api+json"
    elif path.startswith("/internal/") or (path.startswith("/v1/") and not path.startswith("/v1/backend/")):
        response = jsonify(error=title, message=message)
    else:
        response = jsonify(error=message)
    response.status_code = status
    if status == 401 and not path.startswith(TFC_PREFIXES):
        response.headers["WWW-Authenticate"] = 'Basic realm="statesman"'
    return response


def register_error_handlers(app: Flask) -> None:
    """Render unmatched URLs, wrong methods, domain errors and database outages in every API's shape."""

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        message = error.description or error.name
        if error.code == 405:
            allowed = ", ".join(sorted(getattr(error, "valid_methods", None) or []))
            message = f"method {request.method} is not allowed here" + (f"; allowed: {allowed}" if allowed else "")
        response = error_response(error.code or 500, error.name.lower(), message)
        if error.code == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(StatesmanError)
    def domain_error(error: StatesmanError) -> Response:
        return error_response(error.status, type(error).__name__, error.message)

    @app.errorhandler(SQLAlchemyError)
    def database_error(error: SQLAlchemyError) -> Response:
        log.error("database error on %s %s: %s", request.method, request.path, type(error).__name__)
        unavailable = BackendUnavailable("database", "the metadata database did not answer")
        return error_response(503, "unavailable", unavailable.message)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error", "internal server error; see the server log")
