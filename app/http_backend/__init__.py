"""The Terraform ``http`` backend: ``/state/<org>/<workspace>`` (and ``/v1/backend/<unit>``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("http_backend", __name__)

from app.http_backend import errors, locks, state  # noqa: E402,F401  (routes register on import)
