"""A throwaway certificate authority and a server certificate for localhost (Go needs a subjectAltName)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.dev_tls import ensure_development_certificates


@dataclass(frozen=True)
class Certificates:
    """PEM files: ``ca`` for clients (``SSL_CERT_FILE``), ``cert`` and ``key`` for the server."""

    ca: Path
    cert: Path
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """A CA and a server certificate for ``localhost`` / ``127.0.0.1`` signed by it, made the way development mode
    makes its own (one implementation of the certificates Terraform's Go TLS stack accepts)."""
    made = ensure_development_certificates(directory)
    return Certificates(made.ca, made.cert, made.key)


def tls_environment(certificates: Certificates) -> dict[str, str]:
    """The server variables for HTTPS (``SSL_CERT_FILE`` lets the harness's readiness probe trust it)."""
    return {"TLS_CERT": str(certificates.cert), "TLS_KEY": str(certificates.key), "SSL_CERT_FILE": str(certificates.ca)}
