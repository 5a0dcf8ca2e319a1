"""The server's Prometheus metrics, defined once for every layer that counts something.

Every label value comes from a small set the code fixes (route templates, HTTP methods and statuses, driver kinds
and names, API names): never a raw path, an organization or workspace name, an id or a user. Under gunicorn the
values live in ``PROMETHEUS_MULTIPROC_DIR`` (one file per worker, merged when ``/metrics`` is scraped); that
variable must be set before ``prometheus_client`` is first imported, which ``config/gunicorn.conf.py`` does.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# A state server answers lock calls in milliseconds and moves 100 MB states in tens of seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# 1 KiB to 1 GiB, a factor of 4 apart.
SIZE_BUCKETS = tuple(float(1024 * 4**n) for n in range(11))
# The one value a request without a matching route gets as its route label.
UNMATCHED = "unmatched"

http_requests = Counter(
    "statesman_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ("route", "method", "status"),
)
http_request_duration = Histogram(
    "statesman_http_request_duration_seconds",
    "Time from the request's arrival at the app until its response body was sent, by route template and method.",
    ("route", "method"),
    buckets=LATENCY_BUCKETS,
)
http_requests_in_progress = Gauge(
    "statesman_http_requests_in_progress",
    "Requests being served right now, over every worker.",
    multiprocess_mode="livesum",
)
lock_conflicts = Counter(
    "statesman_lock_conflicts",
    "Lock requests refused because another lock ID holds the workspace, by API.",
    ("api",),
)
lock_acquire_duration = Histogram(
    "statesman_lock_acquire_duration_seconds",
    "Time the lock backend took to grant or refuse a lock (waits on the backend included), by lock backend.",
    ("backend",),
    buckets=LATENCY_BUCKETS,
)
state_write_size = Histogram(
    "statesman_state_write_size_bytes",
    "Size of each accepted state write (a new version; retries of the same write are not counted).",
    buckets=SIZE_BUCKETS,
)
driver_errors = Counter(
    "statesman_driver_errors",
    "Backend failures raised by a driver (BackendUnavailable), by driver kind and name.",
    ("kind", "backend"),
)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request (labels: the route template, the method and the status)."""
    http_requests.labels(route=route, method=method, status=str(status)).inc()
    http_request_duration.labels(route=route, method=method).observe(seconds)
