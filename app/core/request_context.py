"""The id of the request being served, for audit events and logs, without reaching into the web framework."""

from __future__ import annotations

from contextvars import ContextVar

# Set by the app's request hook for each request (``app.register_request_hooks``); None outside requests (CLI).
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
