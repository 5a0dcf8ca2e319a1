"""A real, certified OpenID provider for tests (panva's oidc-provider on Node.js), and a browser that uses it.

The fixture directory ``tests/e2e/oidc_provider`` holds ``package.json`` and ``package-lock.json``; they are copied
into a scratch directory and installed there with ``npm ci`` (the checkout is never written to). Without Node.js
and npm the tests that need the provider are skipped, except under ``STATESMAN_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.live_server import free_port
from tests.services import services_required

FIXTURE_DIR = Path(__file__).resolve().parent / "e2e" / "oidc_provider"
CLIENT_ID = "statesman"
CLIENT_SECRET = "statesman-test-client-secret"


def require_node() -> tuple[str, str]:
    """Paths of ``node`` and ``npm``; skip (locally) or fail (CI) when either is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    message = "Node.js and npm are needed for the OpenID provider tests (oidc-provider)"
    if services_required():
        pytest.fail(f"{message} and STATESMAN_REQUIRE_SERVICES=1")
    pytest.skip(message)


def install_provider(directory: Path) -> Path:
    """Copy the fixture into ``directory`` and ``npm ci`` it; returns the directory."""
    _node, npm = require_node()
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json", "provider.mjs"):
        shutil.copyfile(FIXTURE_DIR / name, directory / name)
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci of the OpenID provider fixture failed: {result.stderr[-2000:]}")
    return directory


@dataclass
class OpenIdProvider:
    """A running provider: ``issuer`` and the one client registered for ``redirect_uri``."""

    issuer: str
    redirect_uri: str
    process: subprocess.Popen[str] = field(repr=False)
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_provider(installed: Path, redirect_uri: str, log_path: Path) -> OpenIdProvider:
    """Start the provider on a free loopback port with ``redirect_uri`` registered; waits until it answers."""
    node, _npm = require_node()
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [node, "provider.mjs", str(port), CLIENT_ID, CLIENT_SECRET, redirect_uri],
        cwd=installed,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "NODE_ENV": "test"},
    )
    log.close()
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the OpenID provider exited: {log_path.read_text()[-2000:]}")
        try:
            if requests.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                return OpenIdProvider(issuer, redirect_uri, process)
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the OpenID provider did not answer: {log_path.read_text()[-2000:]}")


class _Forms(HTMLParser):
    """The forms of a page: action, method and the inputs with their values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": attributes.get("action", ""), "inputs": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            inputs = self.forms[-1]["inputs"]
            assert isinstance(inputs, dict)
            inputs[attributes["name"]] = attributes.get("value", "")


def forms_of(page: str) -> list[dict[str, object]]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


# A fetch: (method, url, form data or None) -> (status, headers, body).
Fetch = Callable[[str, str, dict[str, str] | None], tuple[int, dict[str, str], str]]


def requests_fetch(session: requests.Session, verify: str | bool = True) -> Fetch:
    """A fetch through a requests session (its cookie jar is the browser's), without following redirects."""

    def fetch(method: str, url: str, data: dict[str, str] | None) -> tuple[int, dict[str, str], str]:
        response = session.request(method, url, data=data, allow_redirects=False, timeout=30, verify=verify)
        return response.status_code, dict(response.headers), response.text

    return fetch


def browse(
    start: str,
    fetch_for: Callable[[str], Fetch],
    login: str,
    stop_at: Callable[[str], bool],
    max_steps: int = 30,
) -> tuple[str, int, str]:
    """Act as the person at the browser: follow redirects, submit the provider's login form (as ``login``, any
    password) and its consent form, until a URL ``stop_at`` accepts: returns (that URL, not fetched, 0, ""); or
    until a page that is neither a redirect nor a form: returns (its URL, status, body).

    ``fetch_for(url)`` picks how a URL is fetched (a real HTTP client, or a Flask test client for our server).
    """
    method, url, data = "GET", start, None
    for _ in range(max_steps):
        if stop_at(url):
            return url, 0, ""
        status, headers, body = fetch_for(url)(method, url, data)
        location = headers.get("Location") or headers.get("location")
        if status in (301, 302, 303, 307, 308) and location:
            method, url, data = ("GET", urljoin(url, location), None) if status != 307 else (method, location, data)
            continue
        if status != 200:
            return url, status, body
        forms = forms_of(body)
        if not forms:
            return url, status, body
        form = forms[0]
        inputs = dict(form["inputs"])  # type: ignore[call-overload]
        if inputs.get("prompt") == "login":
            inputs.update({"login": login, "password": "any password"})
        method, url, data = "POST", urljoin(url, str(form["action"])), inputs
    raise AssertionError(f"the sign-in did not finish within {max_steps} steps (at {url})")


def on_loopback(url: str) -> bool:
    """True for Terraform's loopback callback (``http://localhost:<port>/...``, a port of the login.v1 range)."""
    parts = urlsplit(url)
    return (
        parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1") and 10000 <= (parts.port or 0) <= 10010
    )
