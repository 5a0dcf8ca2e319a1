"""The agent API's blueprint, in a module of its own so that every resource module can import it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("agent_api", __name__)
