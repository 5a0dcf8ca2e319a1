"""The management API's blueprint, in a module of its own so that its door, route and error modules can import it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("internal", __name__)
