"""The agent's side of the agent API: one method per endpoint, over one HTTP session with the agent token.

A job endpoint answering 404 or 409 means the server no longer knows this agent's lease (it expired, the run was
force-canceled, or the job was never ours): ``LeaseLost``, after which the agent stops Terraform and drops the job.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import requests

API_PREFIX = "/api/agent/v1"
USER_AGENT = "statesman-agent/0.1"
TIMEOUT_SECONDS = 30.0
TRANSFER_TIMEOUT_SECONDS = 300.0


class AgentApiError(Exception):
    """The server refused a request; ``status`` is the HTTP status, the message its detail."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class LeaseLost(AgentApiError):
    """The server does not know the job's lease any more."""


class Refused(AgentApiError):
    """The token is not accepted (401) or not an agent token (403): no retry helps."""


class AgentClient:
    """Calls the agent API of the server at ``url`` with ``token``."""

    def __init__(self, url: str, token: str, session: requests.Session | None = None) -> None:
        self._base = url.rstrip("/") + API_PREFIX
        self._session = session or requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT})

    def claim(self, agent: str) -> dict[str, Any] | None:
        """The next job for this agent, or None when there is none."""
        response = self._call("POST", "/jobs/claim", json={"agent": agent})
        return None if response.status_code == 204 else dict(response.json())

    def download(self, lease: str, what: str, destination: Path) -> bool:
        """Save ``configuration``, ``state`` or ``plan-file`` to ``destination``; False when the server has none."""
        with self._call("GET", f"/jobs/{lease}/{what}", stream=True, timeout=TRANSFER_TIMEOUT_SECONDS) as response:
            if response.status_code == 204:
                return False
            with destination.open("wb") as out:
                shutil.copyfileobj(response.raw, out)
        return True

    def upload(self, lease: str, what: str, source: Path) -> None:
        """PUT ``source`` as the job's ``plan-file``, ``plan-json`` or ``state``."""
        with source.open("rb") as body:
            self._call(
                "PUT",
                f"/jobs/{lease}/{what}",
                data=body,
                headers={"Content-Type": "application/octet-stream"},
                timeout=TRANSFER_TIMEOUT_SECONDS,
            )

    def heartbeat(self, lease: str) -> dict[str, Any]:
        """Renew the lease; the answer says whether the run was canceled or force-canceled."""
        return dict(self._call("POST", f"/jobs/{lease}/heartbeat").json())

    def send_log(self, lease: str, data: bytes) -> None:
        """Append ``data`` to the job's log."""
        self._call("POST", f"/jobs/{lease}/logs", data=data, headers={"Content-Type": "application/octet-stream"})

    def finish(self, lease: str, outcome: str, error: str | None = None) -> None:
        """End the job: ``finished``, ``errored`` (with ``error``) or ``canceled``."""
        self._call("POST", f"/jobs/{lease}/finish", json={"outcome": outcome, "error": error})

    def _call(self, method: str, path: str, timeout: float = TIMEOUT_SECONDS, **kwargs: Any) -> requests.Response:
        response = self._session.request(method, self._base + path, timeout=timeout, **kwargs)
        if response.status_code < 400:
            if kwargs.get("stream"):
                response.raw.decode_content = True
            return response
        detail = _detail(response)
        response.close()
        if response.status_code in (401, 403):
            raise Refused(response.status_code, detail)
        if path.startswith("/jobs/") and path != "/jobs/claim" and response.status_code in (404, 409):
            raise LeaseLost(response.status_code, detail)
        raise AgentApiError(response.status_code, detail)


def _detail(response: requests.Response) -> str:
    """The first error's detail of a JSON:API error document, else the start of the body."""
    try:
        errors = response.json()["errors"]
        return str(errors[0].get("detail") or errors[0].get("title"))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return response.text[:200] or response.reason
