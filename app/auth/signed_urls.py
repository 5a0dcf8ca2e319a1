"""Signed URLs: HMAC-SHA256 with ``OPENTACO_SECRET_KEY`` over method, resource path and expiry.

The signed ``resource`` is the path *below the API mount* (``state-versions/sv-1/content``), so the same URL
verifies whether it arrives at ``/api/v2``, ``/tfe/api/v2`` or behind a proxy that adds a path prefix.
Extra query parameters that change what the URL does (``force``) are signed too. Signatures travel in the
query string (``expires``, ``signature``); gunicorn's access log prints paths without it.

Log URLs carry their grant in the *path* instead (``path_token``): go-tfe's log reader replaces the whole query
string with ``limit``/``offset`` on every read. A path token is ``<expiry>.<hex HMAC>`` over a message of its own
kind, so no query signature ever verifies as a path token or the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import urlencode

from app.core.errors import BackendUnavailable, Forbidden
from app.extensions import config

SIGNATURE_PARAM = "signature"
EXPIRES_PARAM = "expires"
# Separates path-token messages from query-signature messages under the same key.
_PATH_TOKEN_KIND = b"path-token\n"


def _secret() -> bytes:
    secret = config().secret_key
    if not secret:
        raise BackendUnavailable("signing", "OPENTACO_SECRET_KEY is not set, so signed URLs cannot be issued")
    return secret


def _canonical(method: str, resource: str, expires: int, params: Mapping[str, str]) -> bytes:
    extra = "&".join(f"{key}={params[key]}" for key in sorted(params))
    return f"{method.upper()}\n{resource.strip('/')}\n{expires}\n{extra}".encode()


def signature(method: str, resource: str, expires: int, params: Mapping[str, str] | None = None) -> str:
    """The hex HMAC of a request description."""
    return hmac.new(_secret(), _canonical(method, resource, expires, params or {}), hashlib.sha256).hexdigest()


def signed_query(method: str, resource: str, ttl_seconds: int, params: Mapping[str, str] | None = None) -> str:
    """The query string (without ``?``) that makes ``resource`` usable for ``method`` during ``ttl_seconds``."""
    extra = dict(params or {})
    expires = int(time.time()) + ttl_seconds
    return urlencode({**extra, EXPIRES_PARAM: expires, SIGNATURE_PARAM: signature(method, resource, expires, extra)})


def has_signature(args: Mapping[str, str]) -> bool:
    """True when a request carries signature parameters (it is then judged by them alone)."""
    return SIGNATURE_PARAM in args


def verify_signed_request(method: str, resource: str, args: Mapping[str, str]) -> dict[str, str]:
    """Check the signature of a request; returns the signed extra parameters; raises ``Forbidden``."""
    extra = {k: v for k, v in args.items() if k not in (SIGNATURE_PARAM, EXPIRES_PARAM)}
    try:
        expires = int(args.get(EXPIRES_PARAM, ""))
    except ValueError:
        raise Forbidden("malformed signed URL: no valid expiry") from None
    expected = signature(method, resource, expires, extra)
    if not hmac.compare_digest(expected, args.get(SIGNATURE_PARAM, "")):
        raise Forbidden("invalid URL signature")
    if expires < time.time():
        raise Forbidden("this signed URL has expired; request a new one")
    return extra


def path_token(method: str, resource: str, ttl_seconds: int) -> str:
    """A URL path segment that grants ``method`` on ``resource`` during ``ttl_seconds`` (``<expiry>.<hex>``)."""
    expires = int(time.time()) + ttl_seconds
    return f"{expires}.{_path_signature(method, resource, expires)}"


def verify_path_token(method: str, resource: str, token: str) -> None:
    """Check a ``path_token`` for ``method`` on ``resource``; raises ``Forbidden`` when it is bad or expired."""
    expiry, _, given = token.partition(".")
    if not expiry.isdigit() or len(expiry) > 12:
        raise Forbidden("malformed URL token: no valid expiry")
    if not hmac.compare_digest(_path_signature(method, resource, int(expiry)), given):
        raise Forbidden("invalid URL token")
    if int(expiry) < time.time():
        raise Forbidden("this URL has expired; request a new one")


def _path_signature(method: str, resource: str, expires: int) -> str:
    message = _PATH_TOKEN_KIND + _canonical(method, resource, expires, {})
    return hmac.new(_secret(), message, hashlib.sha256).hexdigest()
