"""Errors as JSON:API error documents, the one shape every TFE client parses: ``{"errors": [{status,title,detail}]}``.

``render_error`` is the one rendering, used by this blueprint's handlers and, for unmatched URLs and wrong methods
under the API's three prefixes, by the app-level handler. ``title`` is always the status's phrase.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Response
from marshmallow import ValidationError

from app.core.errors import LockConflict, StatesmanError
from app.tfc_api.blueprint import bp
from app.tfc_api.jsonapi import respond

log = logging.getLogger("statesman.tfc_api")


def error_document(status: int, detail: str, source: dict[str, str] | None = None) -> dict[str, Any]:
    """One error object: ``{"status","title","detail"}`` (plus ``source`` when a field is at fault)."""
    error: dict[str, Any] = {"status": str(status), "title": _title(status), "detail": detail}
    if source:
        error["source"] = source
    return error


def render_error(status: int, message: str) -> Response:
    """A JSON:API error document with one error."""
    return respond({"errors": [error_document(status, message)]}, status)


@bp.errorhandler(StatesmanError)
def domain_error(error: StatesmanError) -> Response:
    """The error's status, except lock conflicts: go-tfe only understands 409 for those (never 423)."""
    status = 409 if isinstance(error, LockConflict) else error.status
    if status >= 500:
        log.error("%s: %s", type(error).__name__, error.message)
    return render_error(status, error.message)


@bp.errorhandler(ValidationError)
def invalid_attributes(error: ValidationError) -> Response:
    """422 with one error per invalid attribute, pointing at it."""
    messages = error.messages if isinstance(error.messages, dict) else {"data": error.messages}
    errors = [
        error_document(
            422,
            f"{field}: {'; '.join(map(str, problems)) if isinstance(problems, list) else problems}",
            {"pointer": f"/data/attributes/{field}"},
        )
        for field, problems in messages.items()
    ]
    return respond({"errors": errors}, 422)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"
