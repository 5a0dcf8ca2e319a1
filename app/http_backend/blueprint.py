"""The http backend's blueprint, in a module of its own so that its route and error modules can import it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("http_backend", __name__)
