"""The ``terraform login`` blueprint (``/oauth``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("oauth", __name__, url_prefix="/oauth")
