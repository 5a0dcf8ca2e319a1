"""gunicorn settings derived from the same ``Config`` the app reads (``statesman`` starts gunicorn with this)."""

import gc
import os
import shutil
import tempfile
from pathlib import Path

from config import load_config
from config.log_format import JsonFormatter

_config = load_config()

# Metrics of every worker go through files in one directory (prometheus-client's multiprocess mode); the variable
# must be set before a worker imports the app. An operator's directory is used as given (it must belong to this
# server alone: it is emptied when the master starts); without one, a private directory lives as long as the master.
_metrics_dir_owned = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir_owned:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="statesman-metrics-")
_metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])

# The master imports and builds the app once and forks the workers from it: the memory holding the modules is then
# shared copy-on-write by all workers instead of each worker importing its own copy, and workers start at once.
# What a process cannot share (database connections, driver clients, credential-renewing threads) the master
# closes before forking (``when_ready``) and each worker makes anew (``post_fork``). The metrics directory above is
# set before the app is imported; prometheus-client notices the fork by the pid and gives each worker its own files.
# The cost: a HUP restarts the workers with the code the master loaded (a new version needs a new master).
preload_app = True

_host = f"[{_config.listen_host}]" if ":" in _config.listen_host else _config.listen_host
bind = [f"{_host}:{_config.port}"]
workers = _config.web_concurrency
# Threads let one worker serve a slow client (a 100 MB upload) without stalling its other connections,
# and give the TFE clients (which open several connections at once) keep-alive.
worker_class = "gthread"
threads = 4
# A gthread worker hands a connection to a thread once its first bytes arrive, and the thread then blocks until
# the request is read: gunicorn has no header or body read timeout, and ``timeout`` (the worker heartbeat) does not
# apply to threads. So a client that trickles its request holds a thread for as long as it likes; nginx in front
# (config/nginx.conf, request buffering) is what keeps slow clients away. Served directly, these bound what one
# connection may send and how long an idle keep-alive connection stays: a request header of at most 50 fields
# of 8 KiB and a request line of 4 KiB, 5 s of keep-alive idleness, 200 connections per worker.
keepalive = 5
timeout = 300
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
worker_connections = 200
graceful_timeout = 30
certfile = _config.tls_cert
keyfile = _config.tls_key
# gunicorn trusts no forwarding headers: the app decides, by OPENTACO_ALLOW_X_FORWARDED_FOR and TRUSTED_PROXIES
# (app/web/proxies.py), so the scheme, host and client address come from one place whatever serves the app.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
proxy_allow_ips = "127.0.0.1,::1"
loglevel = _config.log_level
errorlog = "-"
# No gunicorn access log: the app logs every request itself (``statesman.request``), with its route template
# rather than the URL (whose query may carry a signature), the resolved organization and workspace, and the user,
# in the same format as every other line.
accesslog = None
if _config.log_format == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        # The root logger is left to the app (``app.configure_logging``), which adds the request id to its records.
        "root": {"level": _config.log_level.upper(), "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": _config.log_level.upper(), "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


def on_starting(server):
    """Forget the metrics of a previous run: its workers' files would be merged into this one's."""
    _metrics_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink(missing_ok=True)


def when_ready(server):
    """The master is done with the app it built: close its connections, and freeze the garbage collector's view of
    what it loaded so that collections in the workers do not write to (and so copy) the pages they share."""
    if server.cfg.preload_app:
        from app import close_connections

        close_connections(server.app.wsgi())
        gc.freeze()


def post_fork(server, worker):
    """A new worker makes its own database connections and drivers (see ``preload_app``)."""
    if server.cfg.preload_app:
        from app import reopen_after_fork

        reopen_after_fork(server.app.wsgi())


def post_worker_init(worker):
    """Exempt what the worker holds once started (the app, its modules, its drivers: about 170,000 objects) from
    garbage collection, as the master did with what it loaded.

    The collector otherwise rescans all of them whenever a request allocates enough containers: parsing a 1 MB state
    took 15 ms instead of 3 ms. Objects created later are collected as usual.
    """
    gc.freeze()


def child_exit(server, worker):
    """A worker's live gauges stop counting when it exits; its counters and histograms stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(_metrics_dir))


def on_exit(server):
    """Remove the private metrics directory (an operator's directory is left in place)."""
    if _metrics_dir_owned:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
