"""The Terraform ``http`` backend: ``/state/<org>/<workspace>`` (and ``/v1/backend/<unit>``).

Two URL shapes (organization in the path, or in ``?org=``), not two prefixes: the routes name both, and the blueprint
is registered once.
"""

from __future__ import annotations

from flask import Flask

from app.http_backend import errors, locks, state
from app.http_backend.blueprint import bp
from app.web.mounting import claim_paths

PATHS = ("/state", "/v1/backend")

__all__ = ["PATHS", "bp", "errors", "locks", "register", "state"]


def register(app: Flask) -> None:
    """Register the routes, and render unmatched URLs and wrong methods under ``PATHS`` as this API's errors."""
    app.register_blueprint(bp)
    claim_paths(app, PATHS, errors.render_error)
