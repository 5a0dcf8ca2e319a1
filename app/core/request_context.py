"""The request being served, for audit events, logs and metrics, without reaching into the web framework."""

from __future__ import annotations

import logging
from contextvars import ContextVar

# Set by the app's request hook for each request (``app.register_request_hooks``); None outside requests (CLI).
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
# The API serving the request (``http_backend``, ``tfc_api``, ``internal``, ...), a label of driver-level metrics.
current_api: ContextVar[str] = ContextVar("current_api", default="none")


class RequestIdFilter(logging.Filter):
    """Gives every log record the id of the request it was logged in (``-`` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get() or "-"
        return True
