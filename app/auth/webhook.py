"""Webhook-secret authentication for the web UI's server side (``/internal/...``).

The UI has already signed the person in; it sends the shared secret and says who the person is
(``X-User-ID``, ``X-Email``) and which organization they act in (``X-Org-ID``: external id, id or name).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from flask import g, request

from app.auth.principal import Principal
from app.core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from app.extensions import config
from app.models import Organization
from app.repositories.orgs import get_org
from app.repositories.users import ensure_user

MAX_IDENTITY_HEADER = 255
_ORG_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$")


@dataclass(frozen=True)
class WebhookCaller:
    """The person the UI vouches for, and the organization named by ``X-Org-ID`` (None when empty)."""

    principal: Principal
    org: Organization | None


def check_webhook_secret(authorization: str | None) -> None:
    """401 without a Bearer header, 403 for a wrong secret (compared in constant time)."""
    secret = config().internal_webhook_secret
    if not secret:
        raise NotFound("internal endpoints are not enabled")
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("missing or invalid Authorization header: expected Bearer <webhook secret>")
    if not hmac.compare_digest(value.strip().encode(), secret.encode()):
        raise Forbidden("invalid webhook secret")


def resolve_org_header(value: str | None) -> Organization | None:
    """The organization named by ``X-Org-ID``; None when empty; 400 when malformed; 404 when unknown."""
    ref = (value or "").strip()
    if not ref:
        return None
    if not _ORG_REF.match(ref):
        raise InvalidInput("malformed X-Org-ID header: expected an organization external id, id or name")
    org = get_org(ref)
    if org is None:
        raise unknown_org(ref)
    return org


def unknown_org(ref: str) -> NotFound:
    """The 404 for an organization that is unknown, or that the caller may not see (the same words for both)."""
    return NotFound(
        f"organization {ref!r} is not known to this server or not visible to this user; sync it "
        "first (POST /internal/api/orgs/sync or `make sync-org`) and make the user a member "
        "(POST /internal/api/users)"
    )


def current_webhook_caller(*, with_org: bool = True) -> WebhookCaller:
    """Authenticate the current internal request once (secret, ``X-User-ID``, ``X-Org-ID``).

    ``with_org=False`` ignores ``X-Org-ID`` (creating or syncing an organization that may not exist yet).
    """
    caller: WebhookCaller | None = g.get("webhook_caller")
    if caller is not None:
        return caller
    check_webhook_secret(request.headers.get("Authorization"))
    subject = (request.headers.get("X-User-ID") or "").strip()
    if not subject:
        raise Unauthenticated("missing X-User-ID header")
    email = (request.headers.get("X-Email") or "").strip() or None
    for header, value in (("X-User-ID", subject), ("X-Email", email or "")):
        if len(value) > MAX_IDENTITY_HEADER:
            # the users table holds 255 characters; PostgreSQL would refuse the row mid-request
            raise InvalidInput(f"{header} header is longer than {MAX_IDENTITY_HEADER} characters")
    org = resolve_org_header(request.headers.get("X-Org-ID")) if with_org else None
    # X-Email names a person the server has not seen yet; it never changes a stored email (that is the UI's sync,
    # POST /internal/api/users), so a header cannot redirect role assignments made by email.
    user = ensure_user(subject, email)
    principal = Principal(subject=subject, kind="webhook", user_id=user.id, email=user.email)
    caller = WebhookCaller(principal, org)
    g.webhook_caller = caller
    g.principal = principal
    return caller
