"""The one place the environment is read: ``load_config(os.environ)`` builds a frozen, validated ``Config``.

Both naming families (the OpenTaco ``OPENTACO_*`` names and the older http-backend names) are accepted so users
of either server keep their settings; when both are set the ``OPENTACO_*`` name wins and a warning says so.
Secrets may come from ``*_FILE`` variables (trimmed).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("statesman.config")

STORAGE_BACKENDS = ("fs", "s3", "postgres", "memory")
LOCK_BACKENDS = ("local", "redis", "postgres", "memory")
KMS_BACKENDS = ("local", "vault", "transit", "none")
QUERY_BACKENDS = ("sqlite", "postgres", "mysql")
ENVIRONMENTS = ("production", "development")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
MIB = 1024 * 1024


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable and what is allowed."""


@dataclass(frozen=True)
class Config:
    """Every setting of the server. Build with ``load_config``; tests derive variants with ``dataclasses.replace``."""

    environment: str = "production"
    data_dir: Path = Path("data")
    # server
    listen_host: str = "0.0.0.0"
    port: int = 8080
    tls_cert: str | None = None
    tls_key: str | None = None
    public_base_url: str | None = None
    allow_x_forwarded_for: bool = False
    # peers whose X-Forwarded-* headers count when allow_x_forwarded_for is on (addresses or networks)
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    web_concurrency: int = 5
    web_concurrency_explicit: bool = False
    log_level: str = "info"
    # "json": one JSON object per line (for log collectors); "text": lines for people
    log_format: str = "text"
    # when set, /metrics needs "Authorization: Bearer <metrics_token>"; None: /metrics is open
    metrics_token: str | None = field(default=None, repr=False)
    max_state_size: int = 256 * MIB
    # storage
    storage_backend: str = "fs"
    storage_fs_dir: Path = Path("data/states")
    s3_bucket: str | None = None
    s3_region: str | None = None
    s3_prefix: str = ""
    s3_endpoint: str | None = None
    s3_path_style: bool = False
    s3_use_ssl: bool = True
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    storage_postgres_table: str = "states"
    postgres_connection: str | None = None
    max_versions: int = 100
    # locks
    lock_backend: str = "local"
    redis_url: str = "redis://localhost:6379/0"
    redis_key_prefix: str = "statesman:lock:"
    lock_postgres_table: str = "locks"
    force_unlock_enabled: bool = True
    lock_ttl_seconds: int | None = None
    require_lock_for_write: bool = False
    # remote runs (executed by `statesman agent` processes)
    runs_enabled: bool = False
    run_timeout_seconds: int = 3600
    run_lease_seconds: int = 30
    # encryption at rest
    kms_backend: str = "local"
    kms_key: bytes | None = None
    kms_old_keys: tuple[bytes, ...] = ()
    kms_vault_key_path: str | None = None
    kms_transit_engine: str = "transit"
    kms_transit_key: str | None = None
    vault_addr: str | None = None
    vault_token: str | None = None
    vault_kube_auth_role: str | None = None
    vault_kube_auth_name: str = "kubernetes"
    # metadata database
    query_backend: str = "sqlite"
    database_url: str = "sqlite:///data/taco.db"
    # authentication
    auth_disabled: bool = False
    auth_basic_enabled: bool = True
    auth_basic_users: tuple[tuple[str, str], ...] = ()
    jwt_issuer_url: str | None = None
    jwt_audience: str | None = None
    secret_key: bytes | None = None
    internal_webhook_secret: str | None = None
    # OIDC sign-in (browser and `terraform login`); all None/empty = off
    auth_issuer: str | None = None
    auth_client_id: str | None = None
    auth_client_secret: str | None = None
    auth_authorize_url: str | None = None
    auth_token_url: str | None = None
    auth_scopes: str = "openid email profile"
    auth_groups_claim: str = "groups"
    # (group, organization name, role name or None): a group's members join the organization with that role
    auth_group_orgs: tuple[tuple[str, str, str | None], ...] = ()
    terraform_token_ttl_seconds: int = 30 * 86400
    # development mode: a second server over HTTPS (the cloud block needs it); None = off
    dev_https_port: int | None = None
    # memory storage with no metadata database configured: the launcher gives it a throwaway one
    ephemeral_metadata: bool = False
    testing: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def development(self) -> bool:
        """True for the embedded-defaults mode that ``make run`` uses."""
        return self.environment == "development"

    @property
    def oidc_enabled(self) -> bool:
        """True when sign-in through an identity provider (and so ``terraform login``) is configured."""
        return bool(self.auth_issuer and self.auth_client_id) and not self.auth_disabled

    @property
    def dev_kms_key_file(self) -> Path:
        """Where development mode keeps its generated encryption key."""
        return self.data_dir / "kms.key"

    @property
    def dev_secret_key_file(self) -> Path:
        """Where development mode keeps its generated signing secret."""
        return self.data_dir / "secret.key"


class _Env:
    """Typed access to one environment mapping, collecting warnings about shadowed names."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.warnings: list[str] = []

    def raw(self, *names: str) -> tuple[str, str] | None:
        """First set (non-empty) name among ``names`` and its value; warns when a later alias is shadowed."""
        present = [(n, self.environ[n]) for n in names if self.environ.get(n, "") != ""]
        if not present:
            return None
        chosen = present[0]
        for other, value in present[1:]:
            if value != chosen[1]:
                self.warnings.append(f"both {chosen[0]} and {other} are set; using {chosen[0]}")
        return chosen

    def text(self, *names: str, default: str | None = None) -> str | None:
        found = self.raw(*names)
        return found[1].strip() if found else default

    def secret(self, *names: str) -> str | None:
        """A secret from ``NAME`` or the file named by ``NAME_FILE`` (trimmed)."""
        direct = self.raw(*names)
        if direct:
            return direct[1].strip()
        file_var = self.raw(*(f"{n}_FILE" for n in names))
        if not file_var:
            return None
        try:
            return Path(file_var[1]).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{file_var[0]}: cannot read {file_var[1]}: {exc.strerror}") from exc

    def flag(self, *names: str, default: bool) -> bool:
        found = self.raw(*names)
        if not found:
            return default
        value = found[1].strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{found[0]}={found[1]!r}: expected true or false")

    def integer(self, *names: str, default: int, minimum: int = 0) -> int:
        found = self.raw(*names)
        if not found:
            return default
        try:
            value = int(found[1].strip())
        except ValueError:
            raise ConfigError(f"{found[0]}={found[1]!r}: expected an integer") from None
        if value < minimum:
            raise ConfigError(f"{found[0]}={value}: must be at least {minimum}")
        return value

    def choice(self, *names: str, allowed: tuple[str, ...], default: str) -> str:
        found = self.raw(*names)
        if not found:
            return default
        value = found[1].strip().lower()
        if value not in allowed:
            raise ConfigError(f"{found[0]}={found[1]!r}: expected one of {', '.join(allowed)}")
        return value


_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)


def _parse_size(name: str, value: str) -> int:
    match = _SIZE_RE.match(value)
    if not match:
        raise ConfigError(f"{name}={value!r}: expected a size such as 268435456, 256MiB or 1GiB")
    number, unit = int(match.group(1)), (match.group(2) or "b").lower()
    factor = {"b": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}[unit[0]]
    if number * factor <= 0:
        raise ConfigError(f"{name}={value!r}: must be positive")
    return number * factor


def parse_duration(name: str, value: str) -> int:
    """Seconds from ``90``, ``90s``, ``15m``, ``2h`` or ``30d``."""
    match = _DURATION_RE.match(value)
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"{name}={value!r}: expected a positive duration such as 30s, 15m, 2h or 30d")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2).lower()]


def _decode_key(name: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name}: not valid base64") from None
    if len(key) not in (16, 24, 32):
        raise ConfigError(f"{name}: an AES key must be 16, 24 or 32 bytes (got {len(key)})")
    return key


def _proxies(value: str) -> tuple[str, ...]:
    """``TRUSTED_PROXIES``: comma-separated addresses or networks (``10.0.0.0/8``), each validated."""
    found = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if "%" in item:
            raise ConfigError(f"TRUSTED_PROXIES: {item!r}: give the address without a zone id (%interface)")
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
    if not found:
        raise ConfigError("TRUSTED_PROXIES: name at least one address (the default is 127.0.0.1,::1)")
    return tuple(found)


def _listen(env: _Env) -> tuple[str, int]:
    host, port = "0.0.0.0", 8080
    addr = env.text("LISTEN_ADDR")
    if addr:
        host_part, sep, port_part = addr.rpartition(":")
        if not sep or not port_part.isdigit():
            raise ConfigError(f"LISTEN_ADDR={addr!r}: expected host:port or :port")
        host, port = (host_part.strip("[]") or "0.0.0.0"), int(port_part)
    if addr and env.raw("OPENTACO_PORT") and env.integer("OPENTACO_PORT", default=port) != port:
        env.warnings.append("both OPENTACO_PORT and LISTEN_ADDR set a port; using OPENTACO_PORT")
    port = env.integer("OPENTACO_PORT", default=port, minimum=1)
    if port > 65535:
        raise ConfigError(f"OPENTACO_PORT={port}: must be at most 65535")
    return host, port


# A URL without a driver (``postgresql://``, ``mysql://``, the Go-style ``postgres://``) names the driver this server
# installs; SQLAlchemy would otherwise pick one that is not installed (psycopg 3, mysqlclient).
_INSTALLED_DRIVERS = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


def _with_installed_driver(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{_INSTALLED_DRIVERS[scheme]}://{rest}" if sep and scheme in _INSTALLED_DRIVERS else url


def _database_url(env: _Env, query_backend: str, data_dir: Path) -> str:
    explicit = env.text("DATABASE_URL")
    if explicit:
        return _with_installed_driver(explicit)
    if query_backend == "sqlite":
        path = env.text("OPENTACO_SQLITE_DB_PATH") or str(data_dir / "taco.db")
        return f"sqlite:///{Path(path).expanduser().absolute()}"
    if query_backend == "postgres":
        user = quote(env.text("OPENTACO_POSTGRES_USER", default="postgres") or "", safe="")
        password = env.secret("OPENTACO_POSTGRES_PASSWORD")
        auth = f"{user}:{quote(password, safe='')}" if password else user
        host = env.text("OPENTACO_POSTGRES_HOST", default="localhost")
        port = env.integer("OPENTACO_POSTGRES_PORT", default=5432, minimum=1)
        name = env.text("OPENTACO_POSTGRES_DBNAME", default="taco")
        sslmode = env.text("OPENTACO_POSTGRES_SSLMODE", default="disable")
        return f"postgresql+psycopg2://{auth}@{host}:{port}/{name}?sslmode={sslmode}"
    user = quote(env.text("OPENTACO_MYSQL_USER", default="root") or "", safe="")
    password = env.secret("OPENTACO_MYSQL_PASSWORD")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = env.text("OPENTACO_MYSQL_HOST", default="localhost")
    port = env.integer("OPENTACO_MYSQL_PORT", default=3306, minimum=1)
    name = env.text("OPENTACO_MYSQL_DBNAME", default="taco")
    return f"mysql+pymysql://{auth}@{host}:{port}/{name}?charset=utf8mb4"


def _basic_users(env: _Env) -> tuple[tuple[str, str], ...]:
    found = env.raw("AUTH_BASIC_USERS")
    text = found[1] if found else None
    file_var = env.raw("AUTH_BASIC_USERS_FILE")
    if file_var:
        try:
            text = (text + "\n" if text else "") + Path(file_var[1]).read_text()
        except OSError as exc:
            raise ConfigError(f"AUTH_BASIC_USERS_FILE: cannot read {file_var[1]}: {exc.strerror}") from exc
    if not text:
        return ()
    users = []
    # Entries are separated by newlines or commas; argon2 hashes contain commas ($m=..,t=..,p=..), so a comma only
    # separates when the next entry starts with "user:$".
    for entry in re.split(r"\n|,(?=\s*[^\s,:$]+:\$)", text):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        name, sep, hashed = entry.partition(":")
        if not sep or not name or not hashed.startswith(("$2a$", "$2b$", "$2y$", "$argon2")):
            raise ConfigError(
                f"AUTH_BASIC_USERS: each entry must be user:<bcrypt or argon2 hash> (entry for {name or '?'!r} is not)"
            )
        users.append((name, hashed))
    return tuple(users)


def _workers(env: _Env) -> tuple[int, bool]:
    found = env.raw("WEB_CONCURRENCY")
    if not found:
        return 2 * (os.cpu_count() or 1) + 1, False
    return env.integer("WEB_CONCURRENCY", default=1, minimum=1), True


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate every setting; raises ``ConfigError`` naming the variable at fault."""
    env = _Env(os.environ if environ is None else environ)
    environment = env.choice("STATESMAN_ENV", allowed=ENVIRONMENTS, default="production")
    data_dir = Path(env.text("STATESMAN_DATA_DIR", default="data") or "data").expanduser().absolute()
    host, port = _listen(env)
    workers, workers_explicit = _workers(env)
    query_backend = env.choice("OPENTACO_QUERY_BACKEND", "TACO_QUERY_BACKEND", allowed=QUERY_BACKENDS, default="sqlite")
    max_size = env.text("MAX_STATE_SIZE")
    lock_ttl = env.text("LOCK_TTL")
    kms_key = env.secret("KMS_KEY")
    old_keys = env.text("KMS_OLD_KEYS", default="") or ""
    secret_key = env.secret("OPENTACO_SECRET_KEY")
    ttl = env.text("OPENTACO_TERRAFORM_TOKEN_TTL")
    storage_backend = env.choice("OPENTACO_STORAGE", "STORAGE_BACKEND", allowed=STORAGE_BACKENDS, default="fs")
    kms_backend = env.choice("KMS_BACKEND", allowed=KMS_BACKENDS, default="local")
    key = _decode_key("KMS_KEY", kms_key) if kms_key else None
    if key is None and kms_backend == "local" and storage_backend == "memory":
        # Nothing stored in memory outlives the process, so neither must its key: an ephemeral one is safe.
        key = os.urandom(32)
        env.warnings.append(
            "memory storage without KMS_KEY: using an ephemeral encryption key (states are lost on exit anyway)"
        )
    database_settings = ("DATABASE_URL", "OPENTACO_QUERY_BACKEND", "TACO_QUERY_BACKEND", "OPENTACO_SQLITE_DB_PATH")
    config = Config(
        environment=environment,
        data_dir=data_dir,
        listen_host=host,
        port=port,
        tls_cert=env.text("TLS_CERT"),
        tls_key=env.text("TLS_KEY"),
        public_base_url=(env.text("OPENTACO_PUBLIC_BASE_URL") or "").rstrip("/") or None,
        allow_x_forwarded_for=env.flag("OPENTACO_ALLOW_X_FORWARDED_FOR", default=False),
        trusted_proxies=_proxies(env.text("TRUSTED_PROXIES") or "127.0.0.1,::1"),
        web_concurrency=workers,
        web_concurrency_explicit=workers_explicit,
        log_level=env.choice("OPENTACO_LOG_LEVEL", "LOG_LEVEL", allowed=LOG_LEVELS, default="info"),
        log_format=env.choice("LOG_FORMAT", allowed=LOG_FORMATS, default="text"),
        metrics_token=env.secret("METRICS_TOKEN"),
        max_state_size=_parse_size("MAX_STATE_SIZE", max_size) if max_size else 256 * MIB,
        storage_backend=storage_backend,
        storage_fs_dir=Path(env.text("STORAGE_FS_DIR") or data_dir / "states").absolute(),
        s3_bucket=env.text("OPENTACO_S3_BUCKET", "STORAGE_S3_BUCKET"),
        s3_region=env.text("OPENTACO_S3_REGION", "STORAGE_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
        s3_prefix=(env.text("OPENTACO_S3_PREFIX", "STORAGE_S3_PREFIX", default="") or "").strip("/"),
        s3_endpoint=env.text("AWS_ENDPOINT_URL", "STORAGE_S3_ENDPOINT"),
        s3_path_style=env.flag("OPENTACO_S3_PATH_STYLE", "STORAGE_S3_PATH_STYLE", default=False),
        s3_use_ssl=env.flag("STORAGE_S3_USE_SSL", default=True),
        s3_access_key=env.secret("STORAGE_S3_ACCESS_KEY"),
        s3_secret_key=env.secret("STORAGE_S3_SECRET_KEY"),
        storage_postgres_table=env.text("STORAGE_POSTGRES_TABLE", default="states") or "states",
        postgres_connection=env.secret("POSTGRES_CONNECTION"),
        max_versions=env.integer("OPENTACO_MAX_VERSIONS", default=100),
        lock_backend=env.choice("LOCK_BACKEND", allowed=LOCK_BACKENDS, default="local"),
        redis_url=_redis_url(env),
        redis_key_prefix=env.text("REDIS_KEY_PREFIX", default="statesman:lock:") or "statesman:lock:",
        lock_postgres_table=env.text("LOCK_POSTGRES_TABLE", default="locks") or "locks",
        force_unlock_enabled=env.flag("FORCE_UNLOCK_ENABLED", default=True),
        lock_ttl_seconds=parse_duration("LOCK_TTL", lock_ttl) if lock_ttl and lock_ttl != "off" else None,
        require_lock_for_write=env.flag("REQUIRE_LOCK_FOR_WRITE", default=False),
        runs_enabled=env.flag("RUNS_ENABLED", default=False),
        run_timeout_seconds=parse_duration("RUN_TIMEOUT", env.text("RUN_TIMEOUT") or "1h"),
        run_lease_seconds=parse_duration("RUN_LEASE", env.text("RUN_LEASE") or "30s"),
        kms_backend=kms_backend,
        kms_key=key,
        kms_old_keys=tuple(_decode_key("KMS_OLD_KEYS", k) for k in re.split(r"[,\s]+", old_keys) if k),
        kms_vault_key_path=env.text("KMS_VAULT_KEY_PATH"),
        kms_transit_engine=env.text("KMS_TRANSIT_ENGINE", default="transit") or "transit",
        kms_transit_key=env.text("KMS_TRANSIT_KEY"),
        vault_addr=env.text("VAULT_ADDR"),
        vault_token=env.secret("VAULT_TOKEN"),
        vault_kube_auth_role=env.text("VAULT_KUBE_AUTH_ROLE"),
        vault_kube_auth_name=env.text("VAULT_KUBE_AUTH_NAME", default="kubernetes") or "kubernetes",
        query_backend=query_backend,
        database_url=_database_url(env, query_backend, data_dir),
        auth_disabled=env.flag("OPENTACO_AUTH_DISABLE", default=False),
        auth_basic_enabled=env.flag("AUTH_BASIC_ENABLED", default=True),
        auth_basic_users=_basic_users(env),
        jwt_issuer_url=env.text("AUTH_JWT_OIDC_ISSUER_URL"),
        jwt_audience=env.text("AUTH_JWT_AUDIENCE"),
        secret_key=secret_key.encode() if secret_key else None,
        internal_webhook_secret=env.secret("OPENTACO_ENABLE_INTERNAL_ENDPOINTS"),
        auth_issuer=(env.text("OPENTACO_AUTH_ISSUER") or "").rstrip("/") or None,
        auth_client_id=env.text("OPENTACO_AUTH_CLIENT_ID"),
        auth_client_secret=env.secret("OPENTACO_AUTH_CLIENT_SECRET"),
        auth_authorize_url=env.text("OPENTACO_AUTH_AUTH_URL"),
        auth_token_url=env.text("OPENTACO_AUTH_TOKEN_URL"),
        auth_scopes=env.text("OPENTACO_AUTH_SCOPES", default="openid email profile") or "openid email profile",
        auth_groups_claim=env.text("OPENTACO_AUTH_GROUPS_CLAIM", default="groups") or "groups",
        auth_group_orgs=_group_orgs(env),
        terraform_token_ttl_seconds=parse_duration("OPENTACO_TERRAFORM_TOKEN_TTL", ttl) if ttl else 30 * 86400,
        dev_https_port=_dev_https_port(env, port),
        ephemeral_metadata=storage_backend == "memory" and not any(env.raw(name) for name in database_settings),
    )
    config = with_development_defaults(config)
    validate(config)
    return _with_warnings(config, env.warnings)


def _dev_https_port(env: _Env, port: int) -> int | None:
    """``STATESMAN_DEV_HTTPS_PORT``: the development mode's HTTPS port (default: the HTTP port + 1; 0 = off)."""
    chosen = env.integer("STATESMAN_DEV_HTTPS_PORT", default=port + 1 if port < 65535 else 0)
    if chosen > 65535:
        raise ConfigError(f"STATESMAN_DEV_HTTPS_PORT={chosen}: must be at most 65535 (0 turns it off)")
    if chosen == port:
        raise ConfigError(f"STATESMAN_DEV_HTTPS_PORT={chosen}: must differ from the HTTP port")
    return chosen or None


def _group_orgs(env: _Env) -> tuple[tuple[str, str, str | None], ...]:
    """``OPENTACO_AUTH_GROUP_ORGS``: comma-separated ``GROUP=ORG`` or ``GROUP=ORG:ROLE`` entries."""
    value = env.text("OPENTACO_AUTH_GROUP_ORGS") or ""
    entries: list[tuple[str, str, str | None]] = []
    for entry in (part.strip() for part in value.split(",")):
        group, sep, target = entry.rpartition("=")
        org, _, role = target.partition(":")
        if entry and (not sep or not group.strip() or not org.strip()):
            raise ConfigError(f"OPENTACO_AUTH_GROUP_ORGS: {entry!r} is not GROUP=ORG or GROUP=ORG:ROLE")
        if entry:
            entries.append((group.strip(), org.strip(), role.strip() or None))
    return tuple(entries)


def _redis_url(env: _Env) -> str:
    url = env.text("REDIS_URL")
    if url:
        return url
    addr = env.text("REDIS_ADDR")
    if not addr:
        return "redis://localhost:6379/0"
    password = env.secret("REDIS_PASSWORD")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{addr}/0"


def with_development_defaults(config: Config) -> Config:
    """In development mode, read the generated key files from the data directory when no key is configured."""
    from dataclasses import replace

    if not config.development:
        return config
    changes: dict[str, object] = {}
    if config.kms_backend == "local" and config.kms_key is None and config.dev_kms_key_file.exists():
        changes["kms_key"] = _decode_key(str(config.dev_kms_key_file), config.dev_kms_key_file.read_text())
    if config.secret_key is None and config.dev_secret_key_file.exists():
        changes["secret_key"] = config.dev_secret_key_file.read_text().strip().encode()
    return replace(config, **changes) if changes else config  # type: ignore[arg-type]


def validate(config: Config) -> None:
    """Cross-field checks; raises ``ConfigError``."""
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("TLS_CERT and TLS_KEY must be set together (one alone is an error)")
    if config.storage_backend == "s3" and not config.s3_bucket:
        raise ConfigError("OPENTACO_STORAGE=s3 needs OPENTACO_S3_BUCKET (or STORAGE_S3_BUCKET)")
    if config.kms_backend == "vault" and not config.kms_vault_key_path:
        raise ConfigError("KMS_BACKEND=vault needs KMS_VAULT_KEY_PATH")
    if config.kms_backend == "transit" and not config.kms_transit_key:
        raise ConfigError("KMS_BACKEND=transit needs KMS_TRANSIT_KEY")
    if config.kms_backend in ("vault", "transit") and not config.vault_addr:
        raise ConfigError(f"KMS_BACKEND={config.kms_backend} needs VAULT_ADDR")
    if config.kms_backend == "local" and config.kms_key is None and not config.development:
        raise ConfigError(
            "KMS_BACKEND=local needs KMS_KEY or KMS_KEY_FILE (base64 of a 32-byte key); for example:\n"
            f"  KMS_KEY={generate_key()}\n"
            "or set KMS_BACKEND=none to store states unencrypted"
        )
    if not config.auth_disabled and config.secret_key is None and not config.development:
        raise ConfigError(
            "OPENTACO_SECRET_KEY is required unless authentication is disabled; for example:\n"
            f"  OPENTACO_SECRET_KEY={generate_key()}"
        )
    if config.auth_issuer and not config.auth_client_id:
        raise ConfigError("OPENTACO_AUTH_ISSUER needs OPENTACO_AUTH_CLIENT_ID (the client registered at the issuer)")
    if (config.auth_client_id or config.auth_group_orgs) and not config.auth_issuer:
        raise ConfigError("OPENTACO_AUTH_CLIENT_ID and OPENTACO_AUTH_GROUP_ORGS need OPENTACO_AUTH_ISSUER")
    if config.auth_issuer and not _https_or_loopback(config.auth_issuer):
        raise ConfigError(
            f"OPENTACO_AUTH_ISSUER={config.auth_issuer!r}: must be an https:// URL (http only on loopback)"
        )
    if config.auth_issuer and "openid" not in config.auth_scopes.split():
        raise ConfigError("OPENTACO_AUTH_SCOPES must include openid (the sign-in needs an id token)")
    single_process = config.lock_backend == "memory" or config.storage_backend == "memory"
    if single_process and config.web_concurrency > 1 and config.web_concurrency_explicit:
        raise ConfigError(
            f"WEB_CONCURRENCY={config.web_concurrency}: the memory storage and lock drivers live in one process; "
            "use WEB_CONCURRENCY=1 or the fs storage and local locks"
        )


def _https_or_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"))


def _with_warnings(config: Config, warnings: list[str]) -> Config:
    from dataclasses import replace

    changes: dict[str, object] = {"warnings": tuple(warnings)}
    if (config.lock_backend == "memory" or config.storage_backend == "memory") and config.web_concurrency > 1:
        changes["web_concurrency"] = 1  # memory drivers cannot be shared between worker processes
    return replace(config, **changes)  # type: ignore[arg-type]


def generate_key() -> str:
    """A fresh base64 AES-256 key."""
    return base64.b64encode(os.urandom(32)).decode()
