"""The two doors, ``/internal/api`` and ``/v1``, and who the caller is.

A view is written once and decorated with ``route``; the blueprint is mounted once per door (``MOUNTS``: the
registration name is the door's name), and authentication happens before the view runs, by the door the request
came through (``request.blueprint``). Views read the caller with ``caller()`` and the organization with
``require_org()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import g, request
from marshmallow import Schema, ValidationError

from app.auth import current_principal
from app.auth.access import Access, Target, access_to, may_see, resolve_workspace
from app.auth.principal import Principal
from app.auth.webhook import current_webhook_caller, unknown_org
from app.core.errors import InvalidInput, NotFound
from app.core.json_input import parse_json
from app.internal.blueprint import bp
from app.models import Organization
from app.repositories.orgs import get_org
from app.web.paging import Page, parse_page
from app.web.request_body import read_small_body

INTERNAL = "internal"
V1 = "v1"
# registered blueprint name (the door) -> mount point
MOUNTS = {INTERNAL: "/internal/api", V1: "/v1"}
MAX_JSON_BODY = 256 * 1024
_IGNORES_ORG_HEADER: set[str] = set()

View = Callable[..., Any]


def route(rule: str, methods: list[str], *, org_header: bool = True) -> Callable[[View], View]:
    """Register the view (under both doors); ``org_header=False`` ignores ``X-Org-ID`` (org creation and sync)."""

    def decorator(view: View) -> View:
        bp.add_url_rule(rule, view_func=view, methods=methods)
        if not org_header:
            _IGNORES_ORG_HEADER.add(view.__name__)
        return view

    return decorator


@dataclass(frozen=True)
class Caller:
    """The authenticated caller, the door they came through, and the organization they named (if it exists)."""

    principal: Principal
    door: str
    org_ref: str | None
    org: Organization | None


@bp.before_request
def authenticate() -> None:
    """Authenticate by door before any view runs (so no view can forget to)."""
    door, view = request.blueprint, (request.endpoint or "").rpartition(".")[2]
    if door == INTERNAL:
        webhook = current_webhook_caller(with_org=view not in _IGNORES_ORG_HEADER)
        ref = (request.headers.get("X-Org-ID") or "").strip() or None
        g.internal_caller = Caller(webhook.principal, INTERNAL, ref if webhook.org else None, webhook.org)
        return
    principal = current_principal()
    ref = (request.args.get("org") or "").strip() or principal.org_id
    g.internal_caller = Caller(principal, V1, ref, get_org(ref) if ref else None)


def caller() -> Caller:
    """The caller of this request (set by ``authenticate``)."""
    found: Caller = g.internal_caller
    return found


def require_org(*, member: bool = True) -> Organization:
    """The organization the request names; 400 when it names none, 404 when unknown or (``member``) not visible."""
    current = caller()
    if current.org_ref is None:
        where = "the X-Org-ID header" if current.door == INTERNAL else "?org=<organization> (or a token of one)"
        raise InvalidInput(f"this call needs an organization: send {where}")
    if current.org is None or (member and not may_see(current.principal, current.org)):
        if current.door == INTERNAL:
            raise unknown_org(current.org_ref)
        raise NotFound(f"organization {current.org_ref!r} not found")
    return current.org


def require_access() -> Access:
    """The caller's access to the organization the request names (``require_org``), read once per request."""
    return access_to(caller().principal, require_org())


def open_unit(ref: str, action: str) -> Target:
    """The unit ``ref`` (id or name) in the caller's organization, with ``action`` authorized on its name.

    A name the caller may not act on gets the same 403 whether or not such a unit exists.
    """
    try:
        return resolve_workspace(require_access(), ref, action, by_id=True)
    except NotFound as missing:
        raise NotFound(missing.message.replace("workspace", "unit", 1)) from None


def json_body(schema: Schema, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object validated by ``schema``; an empty body is ``{}`` when ``optional``."""
    raw = read_small_body(MAX_JSON_BODY)
    if not raw.strip():
        if optional:
            return dict(schema.load({}))
        raise InvalidInput("request body is empty: expected a JSON object")
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidInput("request body must be a JSON object")
    return load(schema, data)


def load(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    """``schema.load`` with validation errors as one readable 400."""
    try:
        return dict(schema.load(data))
    except ValidationError as exc:
        raise InvalidInput(f"invalid request: {_flatten(exc.messages)}") from None


def requested_page() -> Page:
    """``?page=&page_size=``: page from 1 (default 1), size 1-200 (default 50); anything else is a 400."""
    return parse_page(
        request.args.get("page"),
        request.args.get("page_size"),
        names=("page", "page_size"),
        default_size=50,
        max_size=200,
        lenient=False,
    )


def query(schema: Schema) -> dict[str, Any]:
    """The query string validated by ``schema``."""
    return load(schema, {k: v for k, v in request.args.items() if k in schema.fields})


def _flatten(messages: Any, prefix: str = "") -> str:
    if isinstance(messages, dict):
        return "; ".join(_flatten(v, f"{prefix}{k}.") for k, v in messages.items())
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return f"{prefix.rstrip('.')}: {' '.join(messages)}"
    if isinstance(messages, list):
        return "; ".join(_flatten(m, prefix) for m in messages)
    return f"{prefix.rstrip('.')}: {messages}"
