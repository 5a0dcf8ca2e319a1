"""A small OIDC issuer for tests: discovery, a JWKS endpoint with rotating RSA keys, and token minting."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class FakeIssuer:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks`` on 127.0.0.1; mints RS256 tokens."""

    def __init__(self) -> None:
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.rotate()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    self._json({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"})
                elif self.path == "/jwks":
                    self._json({"keys": issuer.public_jwks()})
                else:
                    self.send_error(404)

            def _json(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def rotate(self) -> None:
        """Publish a new signing key (the old one stays published) and sign with it from now on."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._keys.append((f"key-{len(self._keys) + 1}", key))

    def retire_old_keys(self) -> None:
        """Stop publishing every key but the newest."""
        self._keys = self._keys[-1:]

    def public_jwks(self) -> list[dict[str, Any]]:
        keys = []
        for kid, key in self._keys:
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
            keys.append(jwk)
        return keys

    def mint(
        self,
        project: str = "acme",
        state: str = "prod",
        audience: str = "statesman",
        ttl: int = 300,
        issuer: str | None = None,
        subject: str = "ci-pipeline",
        typ: str | None = None,
        **extra: Any,
    ) -> str:
        kid, key = self._keys[-1]
        now = int(time.time())
        claims = {
            "iss": issuer or self.url,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + ttl,
            "terraform-backend": {"project": project, "state": state},
            **extra,
        }
        headers = {"kid": kid, **({"typ": typ} if typ else {})}
        return jwt.encode(claims, key, algorithm="RS256", headers=headers)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
