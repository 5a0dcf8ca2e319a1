"""The management API: one set of handlers behind two doors.

``/internal/api/*`` is the web UI's door (webhook secret, ``X-User-ID``, ``X-Org-ID``; absent unless
``OPENTACO_ENABLE_INTERNAL_ENDPOINTS`` is set); ``/v1/*`` is the door for people and CLIs (API token or JWT,
organization from the token or ``?org=``). Both reach the same view functions (see ``door.route``), and every
view checks permissions through ``app.auth.permissions.authorize`` like the other APIs.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("internal", __name__)

from app.internal import audit, errors, locks, orgs, rbac, units, users, versions  # noqa: E402,F401  (routes)
