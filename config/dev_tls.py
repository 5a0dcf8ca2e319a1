"""Development mode's HTTPS: a development CA and a server certificate for localhost / 127.0.0.1, created once in
the data directory (keys mode 0600) and reused; Terraform's cloud block only talks HTTPS, and trusts the CA
through ``SSL_CERT_FILE``."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "Statesman development CA"
CA_DAYS = 3650
# Renewed from the same CA when it is missing or close to its end, so a trusted CA stays trusted.
SERVER_DAYS = 397
RENEW_BEFORE = datetime.timedelta(days=7)


@dataclass(frozen=True)
class DevCertificates:
    """PEM files: ``ca`` for clients (``SSL_CERT_FILE``), ``cert`` and ``key`` for the server."""

    ca: Path
    ca_key: Path
    cert: Path
    key: Path


def certificate_paths(data_dir: Path) -> DevCertificates:
    """Where development mode keeps its CA and server certificate."""
    directory = data_dir / "tls"
    return DevCertificates(
        directory / "ca.pem", directory / "ca.key", directory / "server.pem", directory / "server.key"
    )


def ensure_development_certificates(data_dir: Path) -> DevCertificates:
    """Create the CA once, and the server certificate when it is missing or about to expire."""
    paths = certificate_paths(data_dir)
    paths.ca.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (paths.ca.exists() and paths.ca_key.exists()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        _write_key(paths.ca_key, ca_key)
        paths.ca.write_bytes(_ca_certificate(ca_key).public_bytes(serialization.Encoding.PEM))
        paths.cert.unlink(missing_ok=True)  # signed by the CA that was replaced
    if _needs_server_certificate(paths.cert):
        loaded = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{paths.ca_key}: not an EC private key")
        ca_key = loaded
        ca = x509.load_pem_x509_certificate(paths.ca.read_bytes())
        server_key = ec.generate_private_key(ec.SECP256R1())
        _write_key(paths.key, server_key)
        paths.cert.write_bytes(
            _server_certificate(ca, ca_key, server_key.public_key()).public_bytes(serialization.Encoding.PEM)
        )
    return paths


def _needs_server_certificate(path: Path) -> bool:
    if not path.exists():
        return True
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < RENEW_BEFORE


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable only by us (replacing any older one)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, public_key: ec.EllipticCurvePublicKey
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    # Go (Terraform) checks only the subjectAltName, never the common name.
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    return (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
