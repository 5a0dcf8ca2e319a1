"""Which door a request came through, who is calling, and the absolute URLs to hand back.

The same views serve three mounts: ``/api/v2`` and ``/tfe/api/v2`` (API tokens, JWTs) and
``/internal/tfe/api/v2`` (the web UI's proxy: webhook secret, ``X-User-ID``, ``X-Org-ID``). URLs handed out on the
internal door point at the forwarded host under ``/tfe/api/v2``, which the proxy passes straight through.
"""

from __future__ import annotations

import hashlib

from flask import request

from app.auth import current_principal
from app.auth.principal import Principal
from app.auth.webhook import current_webhook_caller
from app.models import Organization
from app.web.urls import site_url

PUBLIC_MOUNT = "/api/v2"
OPENTACO_MOUNT = "/tfe/api/v2"
INTERNAL_MOUNT = "/internal/tfe/api/v2"
# registered blueprint name -> mount point
MOUNTS = {"tfc_api": PUBLIC_MOUNT, "tfc_api_tfe": OPENTACO_MOUNT, "tfc_api_internal": INTERNAL_MOUNT}
PREFIXES = tuple(MOUNTS.values())
INTERNAL_DOOR = "tfc_api_internal"
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def is_internal_door() -> bool:
    """True for requests through ``/internal/tfe/api/v2``."""
    return request.blueprint == INTERNAL_DOOR


def caller() -> Principal:
    """The authenticated caller of this request, by the door's rules."""
    if is_internal_door():
        return current_webhook_caller().principal
    return current_principal()


def principal_user_id(principal: Principal) -> str:
    """The ``users`` id a principal appears as: its user row, else a stable id derived from its subject."""
    return principal.user_id or subject_user_id(principal.subject)


def subject_user_id(subject: str) -> str:
    """The ``users`` id of a subject without a user row (an organization token, a JWT grant)."""
    return "user-" + hashlib.sha256(subject.encode()).hexdigest()[:16]


def org_scope() -> Organization | None:
    """The organization the UI proxy acts in (``X-Org-ID``); None on the public doors."""
    return current_webhook_caller().org if is_internal_door() else None


def api_base_url() -> str:
    """Absolute URL of the API mount that handed-out links should use (no trailing slash)."""
    if is_internal_door():
        return _forwarded_origin() + OPENTACO_MOUNT
    return site_url() + MOUNTS.get(request.blueprint or "", PUBLIC_MOUNT)


def _forwarded_origin() -> str:
    """``scheme://host[:port]`` from ``X-Forwarded-*`` (trusted: the webhook secret authenticated the proxy)."""
    host = _first(request.headers.get("X-Forwarded-Host"))
    if not host:
        return site_url()
    scheme = _first(request.headers.get("X-Forwarded-Proto")) or request.scheme
    port = _first(request.headers.get("X-Forwarded-Port"))
    has_port = host.rsplit("]", 1)[-1].count(":") == 1
    if port and not has_port and _DEFAULT_PORTS.get(scheme) != port:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()
