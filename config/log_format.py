"""Log line formats: ``LOG_FORMAT=text`` (for people, the default) or ``json`` (one object per line).

Used by the app (``app.configure_logging``) and by gunicorn's own logger (``config/gunicorn.conf.py``), so every
line a server prints has the same shape. Only the fields named here leave the process: a record's other
attributes (whatever a caller passed in ``extra``) are never serialised.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The request log's fields (``app.web.request_log``), in this order after the standard ones.
REQUEST_FIELDS = ("request_id", "method", "route", "status", "duration_ms", "user", "org", "workspace")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...}``: one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``LOG_FORMAT``."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def stderr_handler(log_format: str) -> logging.Handler:
    """A handler writing ``log_format`` lines to standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    return handler
