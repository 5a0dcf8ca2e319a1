"""``/metrics``: the Prometheus exposition of every worker's metrics (``app.core.metrics``).

Under gunicorn each worker writes its values to ``PROMETHEUS_MULTIPROC_DIR`` and a scrape, answered by any worker,
merges all of them; without that directory (one process: tests, ``flask run``) the process's own registry is
served. With ``METRICS_TOKEN`` set a scrape must send ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import os

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from app.extensions import config

bp = Blueprint("metrics", __name__)


@bp.route("/metrics")
def scrape() -> Response:
    """Every metric in Prometheus' text format; 401 without the bearer token when ``METRICS_TOKEN`` is set."""
    token = config().metrics_token
    if token is not None and not _bearer_matches(request.headers.get("Authorization", ""), token):
        return Response(
            "metrics need Authorization: Bearer <METRICS_TOKEN>\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, offered = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode())


def _registry() -> CollectorRegistry:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return registry
