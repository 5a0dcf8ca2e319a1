"""JWT authentication against any OIDC issuer: discovery, JWKS (cached, with timeouts), audience and issuer.

A token's ``terraform-backend`` claim, ``{"project": <org>, "state": <workspace or "*">}``, grants that scope;
this is the claim the old http-backend server understood, so its tokens keep working.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt

from app.core.errors import BackendUnavailable, Unauthenticated

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"]
HTTP_TIMEOUT_SECONDS = 5.0
DISCOVERY_TTL_SECONDS = 3600.0


@dataclass(frozen=True)
class JwtGrant:
    """What a verified token allows: one organization, and one workspace or all (``None``)."""

    subject: str
    org_name: str
    workspace_name: str | None
    email: str | None


def looks_like_jwt(value: str) -> bool:
    """Three dot-separated parts starting with a JSON header (``eyJ``): not an API token."""
    return value.count(".") == 2 and value.startswith("eyJ")


class JwtVerifier:
    """Verifies JWTs from one issuer; discovery and keys are fetched lazily and cached."""

    def __init__(self, issuer_url: str, audience: str | None, jwks_cooldown_seconds: float = 30.0) -> None:
        self.issuer = issuer_url.rstrip("/")
        self.audience = audience
        self._cooldown = jwks_cooldown_seconds
        self._jwks: jwt.PyJWKClient | None = None
        self._discovered_at = 0.0
        self._guard = threading.Lock()

    def verify(self, token: str) -> JwtGrant:
        """The grant of a valid token; ``Unauthenticated`` if invalid, ``BackendUnavailable`` if unreachable."""
        try:
            key = self._keys().get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "sub"], "verify_aud": self.audience is not None},
                leeway=30,
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise BackendUnavailable("OIDC issuer", "cannot fetch its signing keys") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid JWT: {exc}") from None
        return _grant(claims)

    def _keys(self) -> jwt.PyJWKClient:
        with self._guard:
            if self._jwks is None or time.monotonic() - self._discovered_at > DISCOVERY_TTL_SECONDS:
                self._jwks = jwt.PyJWKClient(
                    self._discover_jwks_uri(),
                    cache_jwk_set=True,
                    lifespan=300,
                    timeout=HTTP_TIMEOUT_SECONDS,
                    cooldown_duration=self._cooldown,
                )
                self._discovered_at = time.monotonic()
            return self._jwks

    def _discover_jwks_uri(self) -> str:
        import requests  # only servers with JWT authentication configured need it

        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=HTTP_TIMEOUT_SECONDS)
            response.raise_for_status()
            jwks_uri = response.json()["jwks_uri"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise BackendUnavailable("OIDC issuer", f"discovery at {url} failed ({type(exc).__name__})") from exc
        return str(jwks_uri)


def _grant(claims: dict[str, Any]) -> JwtGrant:
    scope = claims.get("terraform-backend")
    if not isinstance(scope, dict) or not isinstance(scope.get("project"), str) or not scope["project"]:
        raise Unauthenticated("JWT has no terraform-backend claim with a project")
    state = scope.get("state", "*")
    if not isinstance(state, str) or not state:
        raise Unauthenticated('JWT terraform-backend.state must be a workspace name or "*"')
    return JwtGrant(str(claims["sub"]), scope["project"], None if state == "*" else state, claims.get("email"))
