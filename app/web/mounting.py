"""Mounting an API's blueprint under its prefixes, and recording how errors under those prefixes render.

Each API owns every URL under its prefixes, including the ones no route matches: the app-level error handler
(``app.web.error_pages``) renders an unmatched URL, a wrong method or an outage under a prefix with the renderer
the API registered here, so those errors have exactly the shape of the ones the API's own blueprint renders. The
web package thereby needs to know no protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from flask import Blueprint, Flask, Response

_RENDERERS = "statesman.error_renderers"


class ErrorRenderer(Protocol):
    """An API's error response: ``status`` with ``message``, in that API's shape."""

    def __call__(self, status: int, message: str) -> Response: ...


def mount(app: Flask, bp: Blueprint, prefixes: Mapping[str, str], render_error: ErrorRenderer) -> None:
    """Register ``bp`` once per ``{registration name: URL prefix}`` and claim each prefix for ``render_error``.

    Endpoints are ``<registration name>.<view>``, so ``request.blueprint`` tells the views which prefix (door) a
    request came through.
    """
    for name, prefix in prefixes.items():
        app.register_blueprint(bp, name=name, url_prefix=prefix)
    claim_paths(app, prefixes.values(), render_error)


def claim_paths(app: Flask, prefixes: Iterable[str], render_error: ErrorRenderer) -> None:
    """Render app-level errors for paths under each of ``prefixes`` (whole segments) with ``render_error``."""
    renderers: dict[str, ErrorRenderer] = app.extensions.setdefault(_RENDERERS, {})
    for prefix in prefixes:
        renderers[prefix.rstrip("/")] = render_error


def error_renderer(app: Flask, path: str) -> ErrorRenderer | None:
    """The renderer of the longest claimed prefix of ``path``; None when no API claims it."""
    renderers: dict[str, ErrorRenderer] = app.extensions.get(_RENDERERS, {})
    claimed = [prefix for prefix in renderers if path == prefix or path.startswith(prefix + "/")]
    return renderers[max(claimed, key=len)] if claimed else None
