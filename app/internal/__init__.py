"""The management API: one set of handlers behind two doors.

``/internal/api/*`` is the web UI's door (webhook secret, ``X-User-ID``, ``X-Org-ID``; absent unless
``OPENTACO_ENABLE_INTERNAL_ENDPOINTS`` is set); ``/v1/*`` is the door for people and CLIs (API token or JWT,
organization from the token or ``?org=``). The blueprint is mounted at both (see ``door.MOUNTS``), so both reach
the same view functions, and every view checks permissions through ``app.auth.permissions.authorize`` like the
other APIs.
"""

from __future__ import annotations

from flask import Flask

from app.internal import audit, errors, locks, orgs, rbac, units, users, versions
from app.internal.blueprint import bp
from app.internal.door import MOUNTS
from app.web.mounting import mount

__all__ = ["audit", "bp", "errors", "locks", "orgs", "rbac", "register", "units", "users", "versions"]


def register(app: Flask) -> None:
    """Mount the management API at both doors; its errors render the same for unmatched URLs under them."""
    mount(app, bp, MOUNTS, errors.render_error)
