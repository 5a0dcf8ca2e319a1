"""App-level error handling: unmatched URLs, wrong methods, database outages and unexpected errors.

The shape is the one of the API whose prefix the path is under (see ``app.web.mounting``), rendered by that API's
own error module, so an error answered here looks like the ones the API's blueprint answers. Paths no API claims
get a plain ``{"error": message}``.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from app.core.errors import BackendUnavailable, StatesmanError
from app.web.mounting import ErrorRenderer, error_renderer

log = logging.getLogger("statesman.errors")


def plain_error(status: int, message: str) -> Response:
    """``{"error": message}``, for paths outside every API."""
    response = jsonify(error=message)
    response.status_code = status
    return response


def error_response(status: int, message: str) -> Response:
    """An error in the shape of the API the request path belongs to."""
    render: ErrorRenderer = error_renderer(current_app, request.path) or plain_error
    return render(status, message)


def register_error_handlers(app: Flask) -> None:
    """Render unmatched URLs, wrong methods, domain errors and database outages in every API's shape."""

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        message = error.description or error.name
        allowed = list(getattr(error, "valid_methods", None) or []) if error.code == 405 else []
        if error.code == 405:
            listed = ", ".join(sorted(allowed))
            message = f"method {request.method} is not allowed here" + (f"; allowed: {listed}" if listed else "")
        response = error_response(error.code or 500, message)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(StatesmanError)
    def domain_error(error: StatesmanError) -> Response:
        return error_response(error.status, error.message)

    @app.errorhandler(SQLAlchemyError)
    def database_error(error: SQLAlchemyError) -> Response:
        log.error("database error on %s %s: %s", request.method, request.path, type(error).__name__)
        return error_response(503, BackendUnavailable("database", "the metadata database did not answer").message)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal server error; see the server log")
