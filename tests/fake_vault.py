"""A small, real HTTP server speaking the part of Vault's API the Vault key managers use (no Vault can be installed).

Paths, status codes and JSON shapes follow Vault's API documentation, so the real hvac client parses them:
``sys/health``; KV v2 ``<mount>/data|metadata|destroy/<path>``; ``auth/token/lookup-self|renew-self``;
Kubernetes ``auth/<mount>/login``; Transit ``<engine>/keys/<key>[/rotate]``, ``datakey``, ``encrypt``, ``decrypt``.
Tokens are checked and expire; Transit really encrypts (AES-GCM, one secret per key version, ciphertexts
``vault:v<N>:<base64(nonce|ciphertext)>``); every request is recorded so tests can count calls and body sizes.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROOT_TOKEN = "fake-root-token"
JSON = dict[str, Any]


class VaultHTTPError(Exception):
    """Becomes Vault's error answer: ``{"errors": [...]}`` with ``status``."""

    def __init__(self, status: int, *errors: str, body: JSON | None = None) -> None:
        super().__init__(status, errors)
        self.status = status
        self.body = body if body is not None else {"errors": list(errors)}


def _denied() -> VaultHTTPError:
    return VaultHTTPError(403, "permission denied")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: str
    body_size: int


@dataclass
class FakeToken:
    """A token: ``ttl`` 0 never expires (like a root token)."""

    ttl: int
    renewable: bool
    policies: list[str]
    accessor: str = field(default_factory=lambda: secrets.token_hex(12))
    created: float = field(default_factory=time.time)
    expires_at: float | None = None

    def __post_init__(self) -> None:
        if self.ttl > 0:
            self.expires_at = time.monotonic() + self.ttl

    def remaining(self) -> int:
        return 0 if self.expires_at is None else max(round(self.expires_at - time.monotonic()), 0)


@dataclass
class KvVersion:
    """One version of a KV v2 secret."""

    data: JSON
    created_time: str = field(default_factory=_now)
    deletion_time: str = ""
    destroyed: bool = False

    def metadata(self) -> JSON:
        return {"created_time": self.created_time, "deletion_time": self.deletion_time, "destroyed": self.destroyed}


@dataclass(frozen=True)
class KubeRole:
    """A Kubernetes auth role: the service-account JWT it accepts and the TTL of the tokens it issues."""

    jwt: str
    ttl: int
    policies: tuple[str, ...]


class FakeVault:
    """Serves on 127.0.0.1 (a free port) from a thread; use as a context manager or call ``close()``."""

    def __init__(
        self,
        kv_mounts: tuple[str, ...] = ("secret",),
        transit_mounts: tuple[str, ...] = ("transit",),
        kube_mounts: tuple[str, ...] = ("kubernetes",),
    ) -> None:
        self._lock = threading.RLock()
        self.tokens: dict[str, FakeToken] = {ROOT_TOKEN: FakeToken(0, False, ["root"])}
        self.kv: dict[tuple[str, str], list[KvVersion]] = {}
        self.transit: dict[tuple[str, str], list[tuple[bytes, int]]] = {}
        self.kube_roles: dict[tuple[str, str], KubeRole] = {}
        self.requests: list[Recorded] = []
        self._kv_mounts, self._transit_mounts, self._kube_mounts = kv_mounts, transit_mounts, kube_mounts
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-vault", daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeVault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # ----- seeding and inspection (what an operator would do with the vault CLI) -----

    def add_token(
        self, token: str, ttl: int = 0, renewable: bool = False, policies: tuple[str, ...] = ("default",)
    ) -> None:
        """Make ``token`` valid; ``ttl`` seconds (0: never expires)."""
        with self._lock:
            self.tokens[token] = FakeToken(ttl, renewable, list(policies))

    def revoke_token(self, token: str) -> None:
        """Make ``token`` invalid."""
        with self._lock:
            self.tokens.pop(token, None)

    def add_kube_role(self, role: str, jwt: str, ttl: int = 3600, mount: str = "kubernetes") -> None:
        """A Kubernetes auth role that accepts ``jwt``."""
        with self._lock:
            self.kube_roles[(mount, role)] = KubeRole(jwt, ttl, ("default", role))

    def write_secret(self, mount: str, path: str, data: JSON) -> int:
        """Add a version of a KV v2 secret; returns its version number."""
        with self._lock:
            versions = self.kv.setdefault((mount, path), [])
            versions.append(KvVersion(dict(data)))
            return len(versions)

    def create_transit_key(self, engine: str, name: str) -> None:
        """An aes256-gcm96 Transit key at version 1."""
        with self._lock:
            self.transit.setdefault((engine, name), [(os.urandom(32), int(time.time()))])

    def count(self, method: str, path: str) -> int:
        """How many ``method`` requests reached ``path`` (e.g. ``/v1/transit/decrypt/k``)."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == method and r.path == path)

    # ----- HTTP -----

    def _wsgi(self, environ: JSON, start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.requests.append(Recorded(request.method, request.path, request.query_string.decode(), len(body)))
        try:
            status, payload = self._dispatch(request, body)
        except VaultHTTPError as exc:
            status, payload = exc.status, exc.body
        response = (
            Response(status=status)
            if payload is None
            else Response(json.dumps(payload), status=status, mimetype="application/json")
        )
        return response(environ, start_response)

    def _dispatch(self, request: Request, body: bytes) -> tuple[int, JSON | None]:
        path = request.path.removeprefix("/v1/")
        if not request.path.startswith("/v1/"):
            raise VaultHTTPError(404, "unsupported path")
        method = "POST" if request.method == "PUT" else request.method
        if path == "sys/health" and method == "GET":
            return 200, self._health()
        params = self._json(body) if method == "POST" else {}
        mount, _, rest = path.partition("/")
        if mount == "auth":
            return self._auth(method, rest, params, request)
        self._authenticate(request)
        with self._lock:
            if mount in self._kv_mounts:
                return self._kv(method, mount, rest, params, request.args.get("version"))
            if mount in self._transit_mounts:
                return self._transit(method, mount, rest, params)
        raise VaultHTTPError(404, f'no handler for route "{path}". route entry not found.')

    @staticmethod
    def _json(body: bytes) -> JSON:
        if not body:
            return {}
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise VaultHTTPError(400, f"failed to parse JSON input: {exc}") from None
        if not isinstance(parsed, dict):
            raise VaultHTTPError(400, "failed to parse JSON input: not an object")
        return parsed

    def _authenticate(self, request: Request) -> str:
        token = request.headers.get("X-Vault-Token", "")
        if not token and request.headers.get("Authorization", "").startswith("Bearer "):
            token = request.headers["Authorization"].removeprefix("Bearer ")
        with self._lock:
            record = self.tokens.get(token)
            if record is not None and record.expires_at is not None and record.expires_at <= time.monotonic():
                del self.tokens[token]
                record = None
        if record is None:
            raise _denied()
        return token

    @staticmethod
    def _envelope(data: JSON | None = None, auth: JSON | None = None) -> JSON:
        return {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": None,
            "auth": auth,
            "mount_type": "",
        }

    @staticmethod
    def _health() -> JSON:
        return {
            "initialized": True,
            "sealed": False,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()),
            "version": "1.15.6",
            "cluster_name": "vault-cluster-fake",
            "cluster_id": "00000000-0000-0000-0000-000000000000",
        }

    # ----- auth/token and auth/<kubernetes mount> -----

    def _auth(self, method: str, rest: str, params: JSON, request: Request) -> tuple[int, JSON | None]:
        auth_mount, _, action = rest.rpartition("/")
        if auth_mount in self._kube_mounts and action == "login" and method == "POST":
            return 200, self._kube_login(auth_mount, params)
        token = self._authenticate(request)
        with self._lock:
            record = self.tokens[token]
            if rest == "token/lookup-self" and method == "GET":
                return 200, self._envelope(data=self._lookup(token, record))
            if rest == "token/renew-self" and method == "POST":
                return 200, self._envelope(auth=self._renew(token, record))
        raise VaultHTTPError(404, f'no handler for route "auth/{rest}". route entry not found.')

    @staticmethod
    def _lookup(token: str, record: FakeToken) -> JSON:
        expire = None
        if record.expires_at is not None:
            expire = datetime.fromtimestamp(time.time() + record.remaining(), UTC).isoformat()
        return {
            "accessor": record.accessor,
            "creation_time": int(record.created),
            "creation_ttl": record.ttl,
            "display_name": "token",
            "entity_id": "",
            "expire_time": expire,
            "explicit_max_ttl": 0,
            "id": token,
            "meta": None,
            "num_uses": 0,
            "orphan": False,
            "path": "auth/token/create",
            "policies": record.policies,
            "renewable": record.renewable,
            "ttl": record.remaining(),
            "type": "service",
        }

    @staticmethod
    def _auth_block(token: str, record: FakeToken, lease: int, metadata: JSON | None = None) -> JSON:
        return {
            "client_token": token,
            "accessor": record.accessor,
            "policies": record.policies,
            "token_policies": record.policies,
            "metadata": metadata,
            "lease_duration": lease,
            "renewable": record.renewable,
            "entity_id": "",
            "token_type": "service",
            "orphan": True,
            "mfa_requirement": None,
            "num_uses": 0,
        }

    def _renew(self, token: str, record: FakeToken) -> JSON:
        if not record.renewable or record.expires_at is None:
            raise VaultHTTPError(400, "lease is not renewable")
        record.expires_at = time.monotonic() + record.ttl
        return self._auth_block(token, record, record.ttl)

    def _kube_login(self, mount: str, params: JSON) -> JSON:
        with self._lock:
            role = self.kube_roles.get((mount, str(params.get("role", ""))))
            if role is None:
                raise VaultHTTPError(400, f'invalid role name "{params.get("role", "")}"')
            if not params.get("jwt") or not secrets.compare_digest(str(params["jwt"]), role.jwt):
                raise _denied()
            token = "hvs.fake" + secrets.token_hex(12)
            record = FakeToken(role.ttl, True, list(role.policies))
            self.tokens[token] = record
        metadata = {
            "role": params["role"],
            "service_account_name": "statesman",
            "service_account_namespace": "default",
            "service_account_uid": str(uuid.uuid4()),
        }
        return self._envelope(auth=self._auth_block(token, record, role.ttl, metadata))

    # ----- KV version 2 -----

    def _kv(self, method: str, mount: str, rest: str, params: JSON, version: str | None) -> tuple[int, JSON | None]:
        kind, _, path = rest.partition("/")
        if not path:
            raise VaultHTTPError(404, f'no handler for route "{mount}/{rest}". route entry not found.')
        if kind == "data" and method == "GET":
            return 200, self._kv_read(mount, path, int(version) if version and version.isdigit() else 0)
        if kind == "data" and method == "POST":
            return 200, self._kv_write(mount, path, params)
        if kind == "metadata" and method == "GET":
            return 200, self._kv_metadata(mount, path)
        if kind == "destroy" and method == "POST":
            for number in params.get("versions") or ():
                versions = self.kv.get((mount, path), [])
                if 0 < int(number) <= len(versions):
                    versions[int(number) - 1].destroyed = True
            return 204, None
        raise VaultHTTPError(405, "unsupported operation")

    def _kv_read(self, mount: str, path: str, version: int) -> JSON:
        versions = self.kv.get((mount, path))
        if not versions or version > len(versions):
            raise VaultHTTPError(404)
        number = version or len(versions)
        entry = versions[number - 1]
        metadata = {**entry.metadata(), "custom_metadata": None, "version": number}
        if entry.destroyed or entry.deletion_time:
            # Vault answers 404 for a deleted or destroyed version but still says which version it was.
            raise VaultHTTPError(404, body=self._envelope(data={"data": None, "metadata": metadata}))
        return self._envelope(data={"data": entry.data, "metadata": metadata})

    def _kv_write(self, mount: str, path: str, params: JSON) -> JSON:
        if not isinstance(params.get("data"), dict):
            raise VaultHTTPError(400, "no data provided")
        cas = (params.get("options") or {}).get("cas")
        if cas is not None and int(cas) != len(self.kv.get((mount, path), [])):
            raise VaultHTTPError(400, "check-and-set parameter did not match the current version")
        number = self.write_secret(mount, path, params["data"])
        entry = self.kv[(mount, path)][number - 1]
        return self._envelope(data={**entry.metadata(), "custom_metadata": None, "version": number})

    def _kv_metadata(self, mount: str, path: str) -> JSON:
        versions = self.kv.get((mount, path))
        if not versions:
            raise VaultHTTPError(404)
        return self._envelope(
            data={
                "cas_required": False,
                "created_time": versions[0].created_time,
                "current_version": len(versions),
                "custom_metadata": None,
                "delete_version_after": "0s",
                "max_versions": 0,
                "oldest_version": 0,
                "updated_time": versions[-1].created_time,
                "versions": {str(i): v.metadata() for i, v in enumerate(versions, start=1)},
            }
        )

    # ----- Transit -----

    def _transit(self, method: str, engine: str, rest: str, params: JSON) -> tuple[int, JSON | None]:
        parts = rest.split("/")
        if parts[0] == "keys" and len(parts) == 2 and method == "GET":
            return 200, self._envelope(data=self._key_info(engine, parts[1]))
        if parts[0] == "keys" and len(parts) == 2 and method == "POST":
            self.create_transit_key(engine, parts[1])
            return 204, None
        if parts[0] == "keys" and len(parts) == 3 and parts[2] == "rotate" and method == "POST":
            self._versions(engine, parts[1]).append((os.urandom(32), int(time.time())))
            return 200, self._envelope(data=self._key_info(engine, parts[1]))
        if parts[0] == "datakey" and len(parts) == 3 and method == "POST":
            return 200, self._envelope(data=self._datakey(engine, parts[2], parts[1], params))
        if parts[0] == "encrypt" and len(parts) == 2 and method == "POST":
            self.create_transit_key(engine, parts[1])  # Vault upserts the key on encrypt
            plaintext = self._b64(params.get("plaintext"), "plaintext")
            return 200, self._envelope(data=self._seal(engine, parts[1], plaintext))
        if parts[0] == "decrypt" and len(parts) == 2 and method == "POST":
            plaintext = self._unseal(engine, parts[1], str(params.get("ciphertext", "")))
            return 200, self._envelope(data={"plaintext": base64.b64encode(plaintext).decode()})
        raise VaultHTTPError(404, f'no handler for route "{engine}/{rest}". route entry not found.')

    def _versions(self, engine: str, name: str) -> list[tuple[bytes, int]]:
        versions = self.transit.get((engine, name))
        if versions is None:
            raise VaultHTTPError(400, "encryption key not found")
        return versions

    def _key_info(self, engine: str, name: str) -> JSON:
        versions = self.transit.get((engine, name))
        if versions is None:
            raise VaultHTTPError(404)
        return {
            "allow_plaintext_backup": False,
            "auto_rotate_period": 0,
            "deletion_allowed": False,
            "derived": False,
            "exportable": False,
            "imported_key": False,
            "keys": {str(i): created for i, (_, created) in enumerate(versions, start=1)},
            "latest_version": len(versions),
            "min_available_version": 0,
            "min_decryption_version": 1,
            "min_encryption_version": 0,
            "name": name,
            "supports_decryption": True,
            "supports_derivation": True,
            "supports_encryption": True,
            "supports_signing": False,
            "type": "aes256-gcm96",
        }

    def _datakey(self, engine: str, name: str, kind: str, params: JSON) -> JSON:
        if kind not in ("plaintext", "wrapped"):
            raise VaultHTTPError(400, f'invalid path "datakey/{kind}/{name}"')
        bits = int(params.get("bits") or 256)
        if bits not in (128, 256, 512):
            raise VaultHTTPError(400, "invalid bits given")
        data_key = os.urandom(bits // 8)
        sealed = self._seal(engine, name, data_key)
        if kind == "plaintext":
            sealed["plaintext"] = base64.b64encode(data_key).decode()
        return sealed

    def _seal(self, engine: str, name: str, plaintext: bytes) -> JSON:
        versions = self._versions(engine, name)
        nonce = os.urandom(12)
        sealed = nonce + AESGCM(versions[-1][0]).encrypt(nonce, plaintext, None)
        return {
            "ciphertext": f"vault:v{len(versions)}:{base64.b64encode(sealed).decode()}",
            "key_version": len(versions),
        }

    def _unseal(self, engine: str, name: str, ciphertext: str) -> bytes:
        versions = self._versions(engine, name)
        prefix, _, rest = ciphertext.partition(":")
        version, _, encoded = rest.partition(":")
        if prefix != "vault" or not version.startswith("v") or not version[1:].isdigit():
            raise VaultHTTPError(400, "invalid ciphertext: no prefix")
        number = int(version[1:])
        if not 0 < number <= len(versions):
            raise VaultHTTPError(400, "invalid key version")
        sealed = self._b64(encoded, "ciphertext")
        try:
            return AESGCM(versions[number - 1][0]).decrypt(sealed[:12], sealed[12:], None)
        except (InvalidTag, ValueError):
            raise VaultHTTPError(400, "cipher: message authentication failed") from None

    @staticmethod
    def _b64(value: object, name: str) -> bytes:
        try:
            return base64.b64decode(str(value or ""), validate=True)
        except binascii.Error:
            raise VaultHTTPError(400, f"failed to base64-decode {name}") from None
