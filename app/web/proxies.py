"""``X-Forwarded-*`` from the proxies this server trusts, and from nobody else.

Behind nginx (``config/nginx.conf``) the client's scheme, host, port and address arrive in ``X-Forwarded-*``;
discovery, signed upload and download URLs and the request log need them. A client that reaches the server
directly could send the same headers to make the server hand out links to a host of its choosing, so they count
only when ``OPENTACO_ALLOW_X_FORWARDED_FOR`` is on and the connection comes from an address in
``TRUSTED_PROXIES`` (default: this host). gunicorn itself trusts none (``config/gunicorn.conf.py``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class TrustedProxies:
    """WSGI middleware: one proxy hop's ``X-Forwarded-For/-Proto/-Host/-Port`` when the peer is trusted."""

    def __init__(self, app: WSGIApplication, trusted: Iterable[str]) -> None:
        self.app = app
        self.networks = tuple(ipaddress.ip_network(item, strict=False) for item in trusted)
        # No X-Forwarded-Prefix: the shipped nginx does not set it, so a client's own header would pass through.
        self.forwarded = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=0)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if self.is_trusted(environ.get("REMOTE_ADDR")):
            return self.forwarded(environ, start_response)
        return self.app(environ, start_response)

    def is_trusted(self, address: str | None) -> bool:
        """True when ``address`` (the TCP peer) is one of the trusted proxies."""
        try:
            peer = ipaddress.ip_address(address or "")
        except ValueError:
            return False  # no address, or one with a zone id: never a configured proxy
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
            peer = peer.ipv4_mapped  # a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d
        return any(peer in network for network in self.networks)
