"""The agent API (``/api/agent/v1``): how Statesman agents claim remote runs' phases and report on them.

Only agent tokens are accepted here, and nowhere else. A claimed job is named by its lease id, which works only
with the agent token that claimed it: ``/jobs/<lease>/…`` reads the configuration and the current state, stores
the saved plan, its JSON and the new state, appends to the log, renews the lease and finishes the phase. Every
run rule lives in ``app.repositories.runs``; this package only speaks the protocol. Errors are JSON:API error
documents, as in the TFC API; 409 tells an agent its lease is over and it must stop.
"""

from __future__ import annotations

from flask import Flask

from app.agent_api import configuration, errors, jobs, logs, plans, state
from app.agent_api.blueprint import bp
from app.web.mounting import mount

__all__ = ["bp", "configuration", "errors", "jobs", "logs", "plans", "register", "state"]

PREFIX = "/api/agent/v1"


def register(app: Flask) -> None:
    """Mount the agent API; its errors render the same for unmatched URLs under its prefix."""
    mount(app, bp, {"agent_api": PREFIX}, errors.render_error)
