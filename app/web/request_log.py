"""One log line and one metrics observation per request, when its response has been sent.

The line names the route template, never the raw URL: paths carry organization and workspace names (logged as
their own fields once the request resolved them) and the query of a signed URL carries its signature. Headers,
bodies and credentials are never logged; the user is the caller's subject.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Flask, current_app, g, request
from flask.wrappers import Response

from app.auth.access import resolved_names
from app.core import metrics
from app.core.request_context import current_api

log = logging.getLogger("statesman.request")

# Any other method (HTTP allows extension methods) is counted as "other", so the method label stays bounded.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "LOCK", "UNLOCK"})
_STARTED = "statesman_request_started"
_API_TOKEN = "statesman_api_token"
_IDLE_POLL = "statesman_idle_poll"


@dataclass(frozen=True)
class Finished:
    """What is recorded of one request."""

    request_id: str
    method: str
    route: str
    status: int
    user: str | None
    org: str | None
    workspace: str | None
    started: float
    level: int = logging.INFO

    def record(self) -> None:
        """Observe the request's metrics and write its log line (called once the body has been sent)."""
        seconds = time.perf_counter() - self.started
        metrics.http_requests_in_progress.dec()
        metrics.observe_request(self.route, self.method, self.status, seconds)
        duration_ms = round(seconds * 1000, 1)
        log.log(
            self.level,
            "%s %s %s %.1fms rid=%s user=%s org=%s workspace=%s",
            self.method,
            self.route,
            self.status,
            duration_ms,
            self.request_id,
            self.user or "-",
            self.org or "-",
            self.workspace or "-",
            extra={
                "request_id": self.request_id,
                "method": self.method,
                "route": self.route,
                "status": self.status,
                "duration_ms": duration_ms,
                "user": self.user,
                "org": self.org,
                "workspace": self.workspace,
            },
        )


def idle_poll() -> None:
    """Log this request at DEBUG: an agent asking for work and finding none, twice a second per agent, would
    bury every other line."""
    setattr(g, _IDLE_POLL, True)


def init_app(app: Flask) -> None:
    """Start each request's clock first, and record the request when its response closes."""
    app.before_request(start)
    app.after_request(finish)
    app.teardown_request(forget)


def start() -> None:
    """The clock, the in-progress gauge, and the API label of driver-level metrics."""
    setattr(g, _STARTED, time.perf_counter())
    metrics.http_requests_in_progress.inc()
    setattr(g, _API_TOKEN, current_api.set(_api_of(request.endpoint)))


def finish(response: Response) -> Response:
    """Record the request when the WSGI server closes the response, so streamed bodies count in its duration."""
    started: float | None = g.pop(_STARTED, None)
    if started is None:
        return response
    principal = g.get("principal")
    org, workspace = resolved_names()
    finished = Finished(
        request_id=g.get("request_id") or "-",
        method=request.method if request.method in METHODS else "other",
        route=request.url_rule.rule if request.url_rule is not None else metrics.UNMATCHED,
        status=response.status_code,
        user=getattr(principal, "subject", None),
        org=org,
        workspace=workspace,
        started=started,
        level=logging.DEBUG if g.get(_IDLE_POLL) else logging.INFO,
    )
    response.call_on_close(finished.record)
    return response


def forget(_error: BaseException | None) -> None:
    """Reset the API label; a request whose response never reached ``finish`` leaves the in-progress gauge."""
    if g.pop(_STARTED, None) is not None:
        metrics.http_requests_in_progress.dec()
    token = g.pop(_API_TOKEN, None)
    if token is not None:
        current_api.reset(token)


def _api_of(endpoint: str | None) -> str:
    """The package serving ``endpoint`` (``http_backend``, ``tfc_api``, ``internal``, ``oauth``, ``web``)."""
    view = current_app.view_functions.get(endpoint) if endpoint else None
    module = getattr(view, "__module__", "") or ""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "app" else "none"
