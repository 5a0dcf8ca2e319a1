"""The Vault connection the ``vault`` and ``transit`` key managers share: hvac and requests errors stop here.

Authentication is a static token (``VAULT_TOKEN`` / ``VAULT_TOKEN_FILE``) or Kubernetes auth
(``VAULT_KUBE_AUTH_ROLE`` at mount ``VAULT_KUBE_AUTH_NAME``, with the pod's service-account JWT). An expiring token
is renewed from a daemon thread at about half its TTL; with Kubernetes auth a failed renewal logs in again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests

from app.core.errors import BackendUnavailable
from config import Config, ConfigError

log = logging.getLogger("statesman.kms.vault")

SERVICE_ACCOUNT_JWT = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
TIMEOUT_SECONDS = 5.0
MIN_RENEW_DELAY = 1.0
MAX_RETRY_DELAY = 30.0


class VaultRequestFailed(BackendUnavailable):
    """A Vault request failed (unreachable, sealed, 5xx); ``detail`` is the message without the generic prefix."""

    def __init__(self, detail: str) -> None:
        super().__init__("vault", detail)
        self.detail = detail


class VaultPermissionDenied(VaultRequestFailed):
    """Vault answered 401/403: the token is wrong, expired or revoked, or its policy forbids the request."""


class VaultPathMissing(VaultRequestFailed):
    """Vault answered 404: no such secret, secret version or transit key."""


class VaultRequestRejected(VaultRequestFailed):
    """Vault answered 400 (an unknown auth role, a transit ciphertext it cannot decrypt, ...)."""


@contextmanager
def startup_errors() -> Iterator[None]:
    """Turn a wrong token, a missing secret or a rejected request into ``ConfigError`` while the server starts."""
    try:
        yield
    except (VaultPermissionDenied, VaultPathMissing, VaultRequestRejected) as exc:
        raise ConfigError(exc.detail) from exc


def section(response: Any, name: str, action: str) -> dict[str, Any]:
    """The ``data`` or ``auth`` object of a Vault answer; an unexpected shape is a ``VaultRequestFailed``."""
    value = response.get(name) if isinstance(response, dict) else None
    if not isinstance(value, dict):
        raise VaultRequestFailed(f"could not {action}: Vault's answer has no {name!r} object")
    return value


def _vault_errors(exc: hvac.exceptions.VaultError) -> str:
    # Vault's own error strings ("permission denied", "Vault is sealed") never echo the token.
    return "; ".join(str(e) for e in exc.errors or ()) or type(exc).__name__


class VaultClient:
    """An authenticated hvac client whose token is kept alive; ``call`` translates every Vault error."""

    def __init__(
        self,
        addr: str,
        token: str | None = None,
        kube_role: str | None = None,
        kube_mount: str = "kubernetes",
        jwt_path: Path = SERVICE_ACCOUNT_JWT,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        if not token and not kube_role:
            raise ConfigError("the Vault key managers need VAULT_TOKEN, VAULT_TOKEN_FILE or VAULT_KUBE_AUTH_ROLE")
        self.addr = addr.rstrip("/")
        self._kube_role = None if token else kube_role
        self._kube_mount = kube_mount
        self._jwt_path = jwt_path
        self._timeout = timeout
        # An explicit "" stops hvac from falling back to the VAULT_TOKEN variable or ~/.vault-token.
        self._client = hvac.Client(url=self.addr, token=token or "", timeout=timeout)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewable = False
        self._expires_at = 0.0
        try:
            self._start()
        except BaseException:
            self._client.adapter.close()
            raise

    @classmethod
    def from_config(cls, config: Config, jwt_path: Path = SERVICE_ACCOUNT_JWT) -> VaultClient:
        """A client for ``VAULT_ADDR`` authenticated as configured; wrong credentials raise ``ConfigError``."""
        if not config.vault_addr:
            raise ConfigError(f"KMS_BACKEND={config.kms_backend} needs VAULT_ADDR")
        return cls(
            config.vault_addr,
            token=config.vault_token,
            kube_role=config.vault_kube_auth_role,
            kube_mount=config.vault_kube_auth_name,
            jwt_path=jwt_path,
        )

    def call(self, action: str, request: Callable[[Any], Any]) -> Any:
        """Run ``request(hvac_client)``; ``action`` ("read the KV v2 secret x") names it in error messages."""
        try:
            return request(self._client)
        except requests.exceptions.Timeout as exc:
            raise self._failure(VaultRequestFailed, action, f"no answer within {self._timeout:g} s") from exc
        except requests.exceptions.RequestException as exc:
            raise self._failure(VaultRequestFailed, action, f"cannot connect ({type(exc).__name__})") from exc
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
            reason = f"permission denied / invalid token (check {self._credentials} and its policy)"
            raise self._failure(VaultPermissionDenied, action, reason) from exc
        except hvac.exceptions.InvalidPath as exc:
            raise self._failure(VaultPathMissing, action, "not found") from exc
        except hvac.exceptions.InvalidRequest as exc:
            raise self._failure(VaultRequestRejected, action, _vault_errors(exc)) from exc
        except hvac.exceptions.VaultError as exc:
            raise self._failure(VaultRequestFailed, action, _vault_errors(exc)) from exc

    def close(self) -> None:
        """Stop token renewal and close the HTTP session."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._timeout + 1)
        self._client.adapter.close()

    @property
    def _credentials(self) -> str:
        if self._kube_role:
            return f"VAULT_KUBE_AUTH_ROLE={self._kube_role} at auth/{self._kube_mount}"
        return "VAULT_TOKEN / VAULT_TOKEN_FILE"

    def _failure(self, kind: type[VaultRequestFailed], action: str, reason: str) -> VaultRequestFailed:
        return kind(f"could not {action} at VAULT_ADDR={self.addr}: {reason}")

    def _start(self) -> None:
        with startup_errors():
            if self._kube_role:
                self._login()
            else:
                self._lookup()
        if self._expires_at == 0.0:
            return  # a token without a TTL (root, or created with no expiry) needs no renewal
        if not self._renewable and not self._kube_role:
            log.warning("the Vault token is not renewable and expires in %.0f s", self._expires_at - time.monotonic())
            return
        delay = self._next_delay()
        self._thread = threading.Thread(
            target=self._keep_alive, args=(delay,), name="statesman-vault-token", daemon=True
        )
        self._thread.start()

    def _adopt(self, ttl: int, renewable: bool) -> None:
        self._renewable = renewable
        self._expires_at = time.monotonic() + ttl if ttl > 0 else 0.0

    def _lookup(self) -> None:
        action = "look up the Vault token (auth/token/lookup-self)"
        data = section(self.call(action, lambda c: c.auth.token.lookup_self()), "data", action)
        self._adopt(int(data.get("ttl") or 0), bool(data.get("renewable")))

    def _renew(self) -> None:
        action = "renew the Vault token (auth/token/renew-self)"
        auth = section(self.call(action, lambda c: c.auth.token.renew_self()), "auth", action)
        self._adopt(int(auth.get("lease_duration") or 0), bool(auth.get("renewable")))

    def _login(self) -> None:
        role, mount = self._kube_role, self._kube_mount
        jwt = self._read_jwt()
        action = f"log in with Kubernetes auth (role {role}, auth/{mount}/login)"
        # A fresh tokenless client: the login must not carry the old, possibly expired, token.
        login_client = hvac.Client(url=self.addr, token="", timeout=self._timeout)
        try:
            response = self.call(
                action, lambda c: login_client.auth.kubernetes.login(role, jwt, use_token=False, mount_point=mount)
            )
        finally:
            login_client.adapter.close()
        auth = section(response, "auth", action)
        if not auth.get("client_token"):
            raise VaultRequestFailed(f"could not {action}: Vault's answer has no client token")
        self._client.token = auth["client_token"]
        self._adopt(int(auth.get("lease_duration") or 0), bool(auth.get("renewable")))

    def _read_jwt(self) -> str:
        try:
            return self._jwt_path.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"VAULT_KUBE_AUTH_ROLE={self._kube_role}: cannot read the service-account token "
                f"{self._jwt_path}: {exc.strerror}"
            ) from exc

    def _next_delay(self) -> float:
        remaining = self._expires_at - time.monotonic()
        return max(remaining / 2, MIN_RENEW_DELAY)

    def _keep_alive(self, delay: float) -> None:
        while not self._stop.wait(delay):
            delay = self._refresh()

    def _refresh(self) -> float:
        """Renew the token (or log in again); the delay until the next attempt."""
        try:
            self._renew_or_login()
        except (VaultRequestFailed, ConfigError) as exc:
            remaining = self._expires_at - time.monotonic()
            log.warning(
                "could not renew the Vault token (%s); %s",
                getattr(exc, "detail", exc),
                f"it expires in {remaining:.0f} s" if remaining > 0 else "it has expired",
            )
            return min(max(remaining / 2, MIN_RENEW_DELAY), MAX_RETRY_DELAY)
        log.debug("Vault token renewed")
        return self._next_delay()

    def _renew_or_login(self) -> None:
        if self._renewable:
            try:
                self._renew()
                return
            except VaultRequestFailed as exc:
                if not self._kube_role:
                    raise
                log.info("Vault token renewal failed (%s); logging in again with Kubernetes auth", exc.detail)
        self._login()
