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
keepalive = 5
timeout = 300
graceful_timeout = 30
certfile = _config.tls_cert
keyfile = _config.tls_key
forwarded_allow_ips = "*" if _config.allow_x_forwarded_for else "127.0.0.1,::1"
proxy_allow_ips = forwarded_allow_ips
loglevel = _config.log_level
errorlog = "-"
accesslog = "-"
# The path without its query string: signed URLs carry their signature in the query.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
