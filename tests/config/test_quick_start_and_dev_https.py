"""Start-up defaults: memory storage gets an ephemeral key and throwaway metadata; development mode's HTTPS port
and its certificates (made once, keys 0600, renewed from the same CA)."""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from config import ConfigError, dev_tls, load_config
from config.dev_tls import RENEW_BEFORE, ensure_development_certificates


@pytest.mark.parametrize("variable", ["OPENTACO_STORAGE", "STORAGE_BACKEND"])
def test_memory_storage_without_a_key_gets_an_ephemeral_one(variable: str) -> None:
    first = load_config({variable: "memory", "OPENTACO_AUTH_DISABLE": "true"})
    second = load_config({variable: "memory", "OPENTACO_AUTH_DISABLE": "true"})
    assert first.kms_key is not None and len(first.kms_key) == 32
    assert first.kms_key != second.kms_key  # a new one per process: nothing encrypted with it outlives the process
    assert any("ephemeral encryption key" in warning for warning in first.warnings)


def test_other_storage_still_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KMS_KEY"):
        load_config({"OPENTACO_AUTH_DISABLE": "true", "STATESMAN_DATA_DIR": str(tmp_path)})


def test_memory_storage_keeps_a_configured_key_and_kms_backend() -> None:
    key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    configured = load_config({"OPENTACO_STORAGE": "memory", "OPENTACO_AUTH_DISABLE": "true", "KMS_KEY": key})
    assert configured.kms_key == bytes(range(32)) and configured.warnings == ()
    plain = load_config({"OPENTACO_STORAGE": "memory", "OPENTACO_AUTH_DISABLE": "true", "KMS_BACKEND": "none"})
    assert plain.kms_key is None


@pytest.mark.parametrize(
    ("extra", "ephemeral"),
    [
        ({}, True),
        ({"DATABASE_URL": "sqlite:////tmp/x.db"}, False),
        ({"OPENTACO_QUERY_BACKEND": "postgres"}, False),
        ({"OPENTACO_SQLITE_DB_PATH": "/tmp/x.db"}, False),
        ({"OPENTACO_STORAGE": "fs", "KMS_BACKEND": "none"}, False),
    ],
)
def test_throwaway_metadata_only_for_memory_storage_without_a_database(extra: dict[str, str], ephemeral: bool) -> None:
    config = load_config({"OPENTACO_STORAGE": "memory", "OPENTACO_AUTH_DISABLE": "true", **extra})
    assert config.ephemeral_metadata is ephemeral


@pytest.mark.parametrize(
    ("extra", "port"),
    [
        ({}, 8081),
        ({"LISTEN_ADDR": "127.0.0.1:9000"}, 9001),
        ({"OPENTACO_PORT": "7000"}, 7001),
        ({"STATESMAN_DEV_HTTPS_PORT": "8443"}, 8443),
        ({"STATESMAN_DEV_HTTPS_PORT": "0"}, None),
        ({"OPENTACO_PORT": "65535"}, None),
    ],
)
def test_development_https_port(extra: dict[str, str], port: int | None, tmp_path: Path) -> None:
    config = load_config({"STATESMAN_ENV": "development", "STATESMAN_DATA_DIR": str(tmp_path), **extra})
    assert config.dev_https_port == port


@pytest.mark.parametrize(("value", "message"), [("70000", "at most 65535"), ("8080", "differ from the HTTP port")])
def test_development_https_port_errors(value: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(
            {"STATESMAN_ENV": "development", "STATESMAN_DATA_DIR": str(tmp_path), "STATESMAN_DEV_HTTPS_PORT": value}
        )


def test_development_certificates_are_made_once(tmp_path: Path) -> None:
    paths = ensure_development_certificates(tmp_path)
    for key in (paths.ca_key, paths.key):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(paths.ca.read_bytes())
    server = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    assert server.issuer == ca.subject
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]

    before = {path: path.read_bytes() for path in (paths.ca, paths.ca_key, paths.cert, paths.key)}
    ensure_development_certificates(tmp_path)
    assert {path: path.read_bytes() for path in before} == before


def test_a_server_certificate_near_its_end_is_renewed_from_the_same_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dev_tls, "SERVER_DAYS", 1)  # already inside the renewal window when made
    paths = ensure_development_certificates(tmp_path)
    ca_before, cert_before = paths.ca.read_bytes(), paths.cert.read_bytes()
    monkeypatch.undo()
    ensure_development_certificates(tmp_path)
    assert paths.ca.read_bytes() == ca_before and paths.cert.read_bytes() != cert_before
    renewed = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    renewed.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_before))
    assert renewed.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > RENEW_BEFORE
