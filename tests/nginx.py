"""The shipped ``config/nginx.conf`` run by a real nginx (Debian package) in front of a test server.

Only the file's addresses and certificate paths are replaced; TLS is terminated with a throwaway test CA whose
certificate names ``localhost``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.live_server import REPO_ROOT, free_port
from tests.services import services_required
from tests.tfc_api.tls import Certificates, make_certificates

SHIPPED = REPO_ROOT / "config" / "nginx.conf"


def nginx_binary() -> str:
    """The nginx executable; skips (locally) or fails (CI) when it is not installed."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found:
        return found
    if services_required():
        pytest.fail("nginx is not installed and STATESMAN_REQUIRE_SERVICES=1 (.ci/run installs the nginx package)")
    pytest.skip("nginx is not installed (Debian package nginx)")


@dataclass
class Front:
    """nginx in front of a test server: ``url`` is its HTTPS address, ``ca`` the CA file clients trust."""

    url: str
    port: int
    ca: Path


def derived_config(upstream_port: int, port: int, redirect_port: int, certs: Certificates) -> str:
    """The shipped server blocks with this test's addresses and certificate (each replaced exactly once)."""
    text = SHIPPED.read_text()
    for old, new in (
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;"),
        ("listen 80;", f"listen 127.0.0.1:{redirect_port};"),
        ("/etc/ssl/statesman/fullchain.pem", str(certs.cert)),
        ("/etc/ssl/statesman/privkey.pem", str(certs.key)),
    ):
        assert text.count(old) == 1, f"config/nginx.conf no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


_MAIN = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/statesman.conf;
}}
"""


@contextmanager
def run_nginx(upstream_port: int, directory: Path) -> Iterator[Front]:
    """nginx with the shipped configuration in front of ``127.0.0.1:<upstream_port>``, until the block ends."""
    binary = nginx_binary()
    certs = make_certificates(directory / "tls")
    port, redirect_port = free_port(), free_port()
    (directory / "statesman.conf").write_text(derived_config(upstream_port, port, redirect_port, certs))
    user = "user root;" if os.geteuid() == 0 else ""  # workers must write buffered bodies into our directory
    (directory / "nginx.conf").write_text(_MAIN.format(user=user, dir=directory))
    with open(directory / "stderr.log", "wb") as log:
        process = subprocess.Popen(
            [binary, "-p", str(directory), "-c", str(directory / "nginx.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    front = Front(f"https://localhost:{port}", port, certs.ca)
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx exited: {(directory / 'stderr.log').read_text()}{_read(directory / 'error.log')}")
            try:
                requests.get(f"{front.url}/healthz", verify=str(certs.ca), timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield front
    finally:
        process.terminate()
        process.wait(timeout=10)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
