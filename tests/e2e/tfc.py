"""A live server for the remote backend and the cloud block: HTTPS with a test CA, tokens, CLI configs, API calls."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.e2e.terraform_cli import cli_config
from tests.live_server import LiveServer, start_server
from tests.tfc_api.tls import make_certificates, tls_environment


@dataclass(frozen=True)
class TfcServer:
    """A server over HTTPS with organization ``acme`` and alice's token (an admin there)."""

    server: LiveServer
    token: str
    ca: Path
    mirror: Path
    config_dir: Path

    @property
    def hostname(self) -> str:
        return f"localhost:{self.server.port}"

    def cli_config(self, token: str | None = None, name: str = "alice") -> Path:
        """A CLI config file holding ``token`` (default alice's) for this host, providers from the mirror."""
        path = self.config_dir / f"{name}.tfrc"
        path.write_text(cli_config(self.mirror, {self.hostname: token or self.token}))
        return path

    def env(self, token: str | None = None, name: str = "alice") -> dict[str, str]:
        """Terraform's environment for this server: the CLI config and the CA."""
        return {"TF_CLI_CONFIG_FILE": str(self.cli_config(token, name)), "SSL_CERT_FILE": str(self.ca)}

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        """A TFC API call (``/api/v2/<path>``) with alice's token (or ``token``)."""
        return requests.request(
            method,
            f"{self.server.url}/api/v2/{path}",
            timeout=30,
            verify=str(self.ca),
            headers={
                "Authorization": f"Bearer {token or self.token}",
                "Content-Type": "application/vnd.api+json",
            },
            **kwargs,
        )

    def workspace(self, name: str) -> dict[str, Any]:
        """The workspace's JSON:API resource (it must exist)."""
        response = self.api("GET", f"organizations/acme/workspaces/{name}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def current_state(self, name: str) -> dict[str, Any]:
        """The workspace's current state document, downloaded as Terraform would."""
        response = self.api("GET", f"workspaces/{self.workspace(name)['id']}/current-state-version")
        assert response.status_code == 200, response.text
        url = response.json()["data"]["attributes"]["hosted-state-download-url"]
        download = requests.get(url, timeout=30, verify=str(self.ca), headers={"Authorization": f"Bearer {self.token}"})
        assert download.status_code == 200, download.text
        state: dict[str, Any] = json.loads(download.content)
        return state

    def lock(self, name: str, reason: str = "held by a test") -> None:
        """Lock the workspace as another client would."""
        response = self.api("POST", f"workspaces/{self.workspace(name)['id']}/actions/lock", json={"reason": reason})
        assert response.status_code == 200, response.text

    def unlock(self, name: str) -> None:
        response = self.api("POST", f"workspaces/{self.workspace(name)['id']}/actions/unlock")
        assert response.status_code == 200, response.text

    def wait_until_locked(self, name: str, timeout: float = 60.0) -> None:
        """Poll until the workspace exists and is locked (by a Terraform run in the background)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.api("GET", f"organizations/acme/workspaces/{name}")
            if response.status_code == 200 and response.json()["data"]["attributes"]["locked"]:
                return
            time.sleep(0.2)
        raise AssertionError(f"workspace {name} was not locked within {timeout}s")

    def backend(self, workspaces: str, kind: str = "remote") -> str:
        """A ``backend "remote"`` block (or, with ``kind="cloud"``, a ``cloud`` block) for ``acme``."""
        opening = 'backend "remote"' if kind == "remote" else "cloud"
        return (
            f'  {opening} {{\n    hostname     = "{self.hostname}"\n    organization = "acme"\n'
            f"    workspaces {{\n      {workspaces}\n    }}\n  }}\n"
        )


def start_tfc_server(
    directory: Path, mirror: Path, workers: int = 4, extra_env: dict[str, str] | None = None
) -> TfcServer:
    """Certificates, a migrated database and a running HTTPS server in ``directory``, with alice's token."""
    certificates = make_certificates(directory / "tls")
    server = start_server(
        directory / "server",
        workers=workers,
        extra_env={**tls_environment(certificates), **(extra_env or {})},
        scheme="https",
    )
    try:
        token = server.create_token("acme", "alice")
    except Exception:
        server.stop()
        raise
    config_dir = directory / "cli"
    config_dir.mkdir()
    return TfcServer(server, token, certificates.ca, mirror, config_dir)
