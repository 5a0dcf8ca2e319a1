"""gunicorn settings derived from the same ``Config`` the app reads (``statesman`` starts gunicorn with this)."""

from config import load_config

_config = load_config()

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
accesslog = "-"
# The path without its query string: signed URLs carry their signature in the query.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
