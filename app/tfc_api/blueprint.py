"""The TFC API's blueprint, in a module of its own so that every resource module can import it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("tfc_api", __name__)
