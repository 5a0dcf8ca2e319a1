"""``load_config(environ)`` with explicit environments: defaults, both naming families, validation, secrets."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import stat
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.drivers.kms import build_key_manager
from app.drivers.locks import build_lock_driver
from app.drivers.storage import build_storage
from config import MIB, Config, ConfigError, load_config
from config.dev_secrets import ensure_development_secrets

KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The smallest valid production environment, with its data directory under ``tmp_path``."""
    return {"KMS_KEY": KEY, "OPENTACO_SECRET_KEY": "signing-secret", "STATESMAN_DATA_DIR": str(tmp_path / "data")}


def load(env: dict[str, str], **extra: str) -> Config:
    return load_config({**env, **extra})


def error_of(env: dict[str, str], **extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config({**env, **extra})
    return str(caught.value)


# --- defaults -------------------------------------------------------------------------------------------------


def test_defaults(env, tmp_path):
    config = load(env)
    data_dir = (tmp_path / "data").absolute()
    assert config.environment == "production"
    assert config.data_dir == data_dir
    assert (config.listen_host, config.port) == ("0.0.0.0", 8080)
    assert config.tls_cert is None and config.tls_key is None
    assert config.public_base_url is None
    assert config.allow_x_forwarded_for is False
    assert config.log_level == "info"
    assert config.max_state_size == 256 * MIB
    assert config.storage_backend == "fs"
    assert config.storage_fs_dir == data_dir / "states"
    assert config.max_versions == 100
    assert config.lock_backend == "local"
    assert config.redis_url == "redis://localhost:6379/0"
    assert config.force_unlock_enabled is True
    assert config.lock_ttl_seconds is None
    assert config.require_lock_for_write is False
    assert config.kms_backend == "local"
    assert config.kms_key == bytes(range(32))
    assert config.kms_transit_engine == "transit"
    assert config.query_backend == "sqlite"
    assert config.database_url == f"sqlite:///{data_dir / 'taco.db'}"
    assert config.auth_disabled is False
    assert config.auth_basic_enabled is True
    assert config.auth_basic_users == ()
    assert config.secret_key == b"signing-secret"
    assert config.internal_webhook_secret is None
    assert config.web_concurrency == 2 * (os.cpu_count() or 1) + 1
    assert config.warnings == ()


def test_config_is_frozen(env):
    config = load(env)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]


def test_values_are_coerced(env):
    config = load(
        env,
        OPENTACO_PORT="9090",
        OPENTACO_ALLOW_X_FORWARDED_FOR="yes",
        FORCE_UNLOCK_ENABLED="0",
        REQUIRE_LOCK_FOR_WRITE="TRUE",
        OPENTACO_MAX_VERSIONS="0",
        LOCK_TTL="15m",
        MAX_STATE_SIZE="1GiB",
        OPENTACO_PUBLIC_BASE_URL="https://statesman.example.com/",
        LOG_LEVEL="DEBUG",
        WEB_CONCURRENCY="3",
    )
    assert config.port == 9090
    assert config.allow_x_forwarded_for is True
    assert config.force_unlock_enabled is False
    assert config.require_lock_for_write is True
    assert config.max_versions == 0
    assert config.lock_ttl_seconds == 900
    assert config.max_state_size == 1024 * MIB
    assert config.public_base_url == "https://statesman.example.com"
    assert config.log_level == "debug"
    assert config.web_concurrency == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1000", 1000), ("256MiB", 256 * MIB), ("10m", 10 * MIB), ("64k", 64 * 1024), ("2GB", 2048 * MIB)],
)
def test_max_state_size_units(env, value, expected):
    assert load(env, MAX_STATE_SIZE=value).max_state_size == expected


def test_listen_addr(env):
    config = load(env, LISTEN_ADDR="127.0.0.1:9000")
    assert (config.listen_host, config.port) == ("127.0.0.1", 9000)
    assert load(env, LISTEN_ADDR=":7000").port == 7000


# --- naming families -------------------------------------------------------------------------------------------


def test_opentaco_storage_wins_over_storage_backend_with_warning(env):
    config = load(env, OPENTACO_STORAGE="fs", STORAGE_BACKEND="memory")
    assert config.storage_backend == "fs"
    assert len(config.warnings) == 1
    assert "OPENTACO_STORAGE" in config.warnings[0]
    assert "STORAGE_BACKEND" in config.warnings[0]


def test_old_name_alone_is_accepted_without_warning(env):
    config = load(env, STORAGE_BACKEND="memory", STORAGE_S3_BUCKET="unused")
    assert config.storage_backend == "memory"
    assert config.s3_bucket == "unused"
    assert config.warnings == ()


def test_both_names_with_the_same_value_do_not_warn(env):
    assert load(env, OPENTACO_STORAGE="fs", STORAGE_BACKEND="fs").warnings == ()


def test_log_level_families(env):
    config = load(env, OPENTACO_LOG_LEVEL="warning", LOG_LEVEL="debug")
    assert config.log_level == "warning"
    assert any("OPENTACO_LOG_LEVEL" in w and "LOG_LEVEL" in w for w in config.warnings)


def test_log_format_and_metrics_token(env, tmp_path):
    assert (load(env).log_format, load(env).metrics_token) == ("text", None)
    assert load(env, LOG_FORMAT="JSON").log_format == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT='yaml': expected one of text, json"):
        load(env, LOG_FORMAT="yaml")
    secret = tmp_path / "metrics-token"
    secret.write_text("from-a-file\n")
    assert load(env, METRICS_TOKEN_FILE=str(secret)).metrics_token == "from-a-file"
    assert "from-a-file" not in repr(load(env, METRICS_TOKEN_FILE=str(secret)))


def test_s3_bucket_families(env):
    config = load(env, OPENTACO_STORAGE="s3", OPENTACO_S3_BUCKET="new", STORAGE_S3_BUCKET="old")
    assert config.s3_bucket == "new"
    assert any("OPENTACO_S3_BUCKET" in w for w in config.warnings)


def test_query_backend_alias(env):
    config = load(env, TACO_QUERY_BACKEND="postgres")
    assert config.query_backend == "postgres"
    assert config.database_url.startswith("postgresql+psycopg2://")


def test_opentaco_port_wins_over_listen_addr_with_warning(env):
    config = load(env, OPENTACO_PORT="9000", LISTEN_ADDR=":8081")
    assert config.port == 9000
    assert any("OPENTACO_PORT" in w and "LISTEN_ADDR" in w for w in config.warnings)


# --- invalid values ----------------------------------------------------------------------------------------------


def test_unknown_storage_lists_valid_ones(env):
    message = error_of(env, OPENTACO_STORAGE="gcs")
    assert "OPENTACO_STORAGE" in message
    for name in ("fs", "s3", "postgres", "memory"):
        assert name in message


def test_unknown_storage_under_old_name_names_that_variable(env):
    message = error_of(env, STORAGE_BACKEND="dynamo")
    assert "STORAGE_BACKEND" in message
    assert "'dynamo'" in message


@pytest.mark.parametrize(
    ("variable", "allowed"),
    [
        ("LOCK_BACKEND", ("local", "redis", "postgres", "memory")),
        ("KMS_BACKEND", ("local", "vault", "transit", "none")),
        ("OPENTACO_QUERY_BACKEND", ("sqlite", "postgres", "mysql")),
        ("LOG_LEVEL", ("debug", "info", "warning", "error")),
        ("STATESMAN_ENV", ("production", "development")),
    ],
)
def test_other_choices_list_valid_ones(env, variable, allowed):
    message = error_of(env, **{variable: "bogus"})
    assert variable in message
    assert all(name in message for name in allowed)


@pytest.mark.parametrize(
    "variable",
    [
        "FORCE_UNLOCK_ENABLED",
        "REQUIRE_LOCK_FOR_WRITE",
        "OPENTACO_AUTH_DISABLE",
        "AUTH_BASIC_ENABLED",
        "OPENTACO_ALLOW_X_FORWARDED_FOR",
    ],
)
def test_bad_bool(env, variable):
    message = error_of(env, **{variable: "maybe"})
    assert variable in message
    assert "true or false" in message


@pytest.mark.parametrize(
    "variable", ["OPENTACO_MAX_VERSIONS", "OPENTACO_PORT", "WEB_CONCURRENCY", "OPENTACO_POSTGRES_PORT"]
)
def test_bad_int(env, variable):
    extra = {"OPENTACO_QUERY_BACKEND": "postgres"} if "POSTGRES" in variable else {}
    message = error_of(env, **extra, **{variable: "ten"})
    assert variable in message
    assert "integer" in message


def test_negative_max_versions(env):
    assert "OPENTACO_MAX_VERSIONS" in error_of(env, OPENTACO_MAX_VERSIONS="-1")


def test_port_out_of_range(env):
    assert "OPENTACO_PORT" in error_of(env, OPENTACO_PORT="70000")
    assert "LISTEN_ADDR" in error_of(env, LISTEN_ADDR="localhost")


@pytest.mark.parametrize("value", ["lots", "-5", "0", "12 parsecs", "1.5GiB"])
def test_bad_max_state_size(env, value):
    assert "MAX_STATE_SIZE" in error_of(env, MAX_STATE_SIZE=value)


@pytest.mark.parametrize("value", ["soon", "0", "-1m", "5y"])
def test_bad_lock_ttl(env, value):
    assert "LOCK_TTL" in error_of(env, LOCK_TTL=value)


def test_lock_ttl_off(env):
    assert load(env, LOCK_TTL="off").lock_ttl_seconds is None


def test_tls_cert_without_key(env):
    message = error_of(env, TLS_CERT="/etc/ssl/cert.pem")
    assert "TLS_CERT" in message and "TLS_KEY" in message
    assert "TLS_KEY" in error_of(env, TLS_KEY="/etc/ssl/key.pem")
    both = load(env, TLS_CERT="/c.pem", TLS_KEY="/k.pem")
    assert (both.tls_cert, both.tls_key) == ("/c.pem", "/k.pem")


def test_kms_key_not_base64(env):
    message = error_of(env, KMS_KEY="this is not base64!")
    assert "KMS_KEY" in message
    assert "base64" in message


@pytest.mark.parametrize("length", [1, 10, 31, 33, 64])
def test_kms_key_wrong_length(env, length):
    message = error_of(env, KMS_KEY=base64.b64encode(os.urandom(length)).decode())
    assert "KMS_KEY" in message
    assert "16, 24 or 32 bytes" in message
    assert f"got {length}" in message


@pytest.mark.parametrize("length", [16, 24, 32])
def test_kms_key_valid_lengths(env, length):
    key = os.urandom(length)
    assert load(env, KMS_KEY=base64.b64encode(key).decode()).kms_key == key


def test_kms_old_keys(env):
    old = [os.urandom(32), os.urandom(16)]
    config = load(env, KMS_OLD_KEYS=" , ".join(base64.b64encode(k).decode() for k in old))
    assert config.kms_old_keys == tuple(old)
    assert "KMS_OLD_KEYS" in error_of(env, KMS_OLD_KEYS="nope!")


def test_production_without_kms_key_prints_a_generated_key(env):
    del env["KMS_KEY"]
    message = error_of(env)
    assert "KMS_KEY" in message
    match = re.search(r"KMS_KEY=([A-Za-z0-9+/=]+)", message)
    assert match, message
    assert len(base64.b64decode(match.group(1), validate=True)) == 32
    # A different key every time: never a shared default.
    other = re.search(r"KMS_KEY=([A-Za-z0-9+/=]+)", error_of(env))
    assert other and other.group(1) != match.group(1)


def test_kms_none_needs_no_key(env):
    del env["KMS_KEY"]
    config = load(env, KMS_BACKEND="none")
    assert config.kms_backend == "none"
    assert config.kms_key is None


def test_production_without_secret_key(env):
    del env["OPENTACO_SECRET_KEY"]
    assert "OPENTACO_SECRET_KEY" in error_of(env)
    assert load(env, OPENTACO_AUTH_DISABLE="true").secret_key is None


@pytest.mark.parametrize("extra", [{"OPENTACO_STORAGE": "memory"}, {"LOCK_BACKEND": "memory"}])
def test_memory_drivers_refuse_several_workers(env, extra):
    message = error_of(env, WEB_CONCURRENCY="4", **extra)
    assert "WEB_CONCURRENCY" in message
    assert load(env, WEB_CONCURRENCY="1", **extra).web_concurrency == 1
    # Without an explicit WEB_CONCURRENCY the memory drivers simply get one worker.
    assert load(env, **extra).web_concurrency == 1


def test_cross_field_requirements(env):
    assert "OPENTACO_S3_BUCKET" in error_of(env, OPENTACO_STORAGE="s3")
    assert "KMS_VAULT_KEY_PATH" in error_of(env, KMS_BACKEND="vault", VAULT_ADDR="http://vault:8200")
    assert "KMS_TRANSIT_KEY" in error_of(env, KMS_BACKEND="transit", VAULT_ADDR="http://vault:8200")
    assert "VAULT_ADDR" in error_of(env, KMS_BACKEND="transit", KMS_TRANSIT_KEY="statesman")


def test_bad_basic_users_entry(env):
    message = error_of(env, AUTH_BASIC_USERS="alice:plaintext-password")
    assert "AUTH_BASIC_USERS" in message
    assert "alice" in message


# --- secrets from files ------------------------------------------------------------------------------------------


def test_file_variants_are_read_and_trimmed(env, tmp_path):
    del env["KMS_KEY"], env["OPENTACO_SECRET_KEY"]
    files = {
        "KMS_KEY_FILE": f"\n  {KEY}  \n\n",
        "OPENTACO_SECRET_KEY_FILE": "  file-secret\n",
        "VAULT_TOKEN_FILE": "hvs.token\n",
        "OPENTACO_POSTGRES_PASSWORD_FILE": "pg-password\n",
        "OPENTACO_ENABLE_INTERNAL_ENDPOINTS_FILE": " webhook-secret \n",
    }
    for name, content in files.items():
        path = tmp_path / name.lower()
        path.write_text(content)
        env[name] = str(path)
    config = load(env, OPENTACO_QUERY_BACKEND="postgres")
    assert config.kms_key == bytes(range(32))
    assert config.secret_key == b"file-secret"
    assert config.vault_token == "hvs.token"
    assert config.internal_webhook_secret == "webhook-secret"
    assert make_url(config.database_url).password == "pg-password"


def test_direct_value_wins_over_file(env, tmp_path):
    path = tmp_path / "secret"
    path.write_text("from-file\n")
    assert load(env, OPENTACO_SECRET_KEY_FILE=str(path)).secret_key == b"signing-secret"


def test_unreadable_secret_file_names_the_variable(env, tmp_path):
    del env["KMS_KEY"]
    message = error_of(env, KMS_KEY_FILE=str(tmp_path / "missing.key"))
    assert "KMS_KEY_FILE" in message
    assert "missing.key" in message


# --- the shell's variables ---------------------------------------------------------------------------------------


def test_unprefixed_shell_variables_are_never_used(env):
    shell = {
        "USER": "mallory",
        "PORT": "9999",
        "HOST": "evil.example",
        "PASSWORD": "hunter2",
        "DBNAME": "other",
        "LOGNAME": "mallory",
        "HOSTNAME": "box",
    }
    for backend in ("postgres", "mysql"):
        config = load(env, **shell, OPENTACO_QUERY_BACKEND=backend)
        url = make_url(config.database_url)
        assert url.username != "mallory"
        assert url.host == "localhost"
        assert url.password is None
        assert url.database == "taco"
        assert "mallory" not in config.database_url and "hunter2" not in config.database_url
    assert load(env, **shell).port == 8080


# --- database URLs -----------------------------------------------------------------------------------------------


def test_database_url_overrides(env):
    config = load(
        env,
        DATABASE_URL="postgresql+psycopg2://u:p@db:5432/meta",
        OPENTACO_QUERY_BACKEND="postgres",
        OPENTACO_POSTGRES_HOST="ignored",
        OPENTACO_SQLITE_DB_PATH="/ignored.db",
    )
    assert config.database_url == "postgresql+psycopg2://u:p@db:5432/meta"


def test_sqlite_path(env, tmp_path):
    path = tmp_path / "meta" / "x.db"
    assert load(env, OPENTACO_SQLITE_DB_PATH=str(path)).database_url == f"sqlite:///{path}"


def test_postgres_url_from_parts(env):
    config = load(
        env,
        OPENTACO_QUERY_BACKEND="postgres",
        OPENTACO_POSTGRES_HOST="db.internal",
        OPENTACO_POSTGRES_PORT="6543",
        OPENTACO_POSTGRES_USER="statesman",
        OPENTACO_POSTGRES_PASSWORD="p@ss/w:rd",
        OPENTACO_POSTGRES_DBNAME="tfmeta",
        OPENTACO_POSTGRES_SSLMODE="require",
    )
    url = make_url(config.database_url)
    assert url.drivername == "postgresql+psycopg2"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "statesman",
        "p@ss/w:rd",
        "db.internal",
        6543,
        "tfmeta",
    )
    assert url.query["sslmode"] == "require"


def test_postgres_url_defaults(env):
    url = make_url(load(env, OPENTACO_QUERY_BACKEND="postgres").database_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "postgres",
        None,
        "localhost",
        5432,
        "taco",
    )
    assert url.query["sslmode"] == "disable"


def test_mysql_url_from_parts(env):
    config = load(
        env,
        OPENTACO_QUERY_BACKEND="mysql",
        OPENTACO_MYSQL_HOST="maria",
        OPENTACO_MYSQL_PORT="3307",
        OPENTACO_MYSQL_USER="tf",
        OPENTACO_MYSQL_PASSWORD="s3cr%t#",
        OPENTACO_MYSQL_DBNAME="meta",
    )
    url = make_url(config.database_url)
    assert url.drivername == "mysql+pymysql"
    assert (url.username, url.password, url.host, url.port, url.database) == ("tf", "s3cr%t#", "maria", 3307, "meta")
    assert url.query["charset"] == "utf8mb4"


def test_mysql_url_defaults(env):
    url = make_url(load(env, OPENTACO_QUERY_BACKEND="mysql").database_url)
    assert (url.username, url.password, url.host, url.port, url.database) == ("root", None, "localhost", 3306, "taco")


@pytest.mark.parametrize("backend", ["postgres", "mysql"])
def test_database_password_with_space(env, backend):
    prefix = "OPENTACO_POSTGRES" if backend == "postgres" else "OPENTACO_MYSQL"
    config = load(env, OPENTACO_QUERY_BACKEND=backend, **{f"{prefix}_PASSWORD": "correct horse"})
    assert make_url(config.database_url).password == "correct horse"


def test_redis_url_from_addr(env):
    assert load(env, REDIS_ADDR="cache:6380").redis_url == "redis://cache:6380/0"
    assert load(env, REDIS_URL="redis://r:1/2", REDIS_ADDR="ignored:1").redis_url == "redis://r:1/2"
    assert load(env, REDIS_ADDR="cache:6380", REDIS_PASSWORD="pw").redis_url == "redis://:pw@cache:6380/0"


# --- development mode ------------------------------------------------------------------------------------------


def test_development_mode_generates_key_files_once_and_reuses_them(tmp_path):
    data_dir = tmp_path / "dev-data"
    environ = {"STATESMAN_ENV": "development", "STATESMAN_DATA_DIR": str(data_dir)}
    config = load_config(environ)
    assert config.development
    assert config.kms_key is None  # nothing generated yet: load_config does not write files
    assert not config.dev_kms_key_file.exists()

    first = ensure_development_secrets(config)
    assert first.kms_key is not None and len(first.kms_key) == 32
    assert first.secret_key
    for path in (first.dev_kms_key_file, first.dev_secret_key_file):
        assert path.parent == data_dir
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kms_text = first.dev_kms_key_file.read_text()
    secret_text = first.dev_secret_key_file.read_text()

    # A second start (same data directory) reuses the files unchanged.
    second = ensure_development_secrets(load_config(environ))
    assert second.kms_key == first.kms_key
    assert second.secret_key == first.secret_key
    assert first.dev_kms_key_file.read_text() == kms_text
    assert first.dev_secret_key_file.read_text() == secret_text
    # load_config alone already picks them up once they exist.
    reloaded = load_config(environ)
    assert reloaded.kms_key == first.kms_key
    assert reloaded.secret_key == first.secret_key


def test_development_mode_keeps_configured_keys(tmp_path):
    environ = {
        "STATESMAN_ENV": "development",
        "STATESMAN_DATA_DIR": str(tmp_path),
        "KMS_KEY": KEY,
        "OPENTACO_SECRET_KEY": "mine",
    }
    config = ensure_development_secrets(load_config(environ))
    assert config.kms_key == bytes(range(32))
    assert config.secret_key == b"mine"
    assert not config.dev_kms_key_file.exists()
    assert not config.dev_secret_key_file.exists()


def test_production_mode_generates_nothing(env, tmp_path):
    config = ensure_development_secrets(load(env))
    assert config.kms_key == bytes(range(32))
    assert not (tmp_path / "data").exists()


# --- driver registries -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field", "setting", "valid"),
    [
        (build_storage, "storage_backend", "OPENTACO_STORAGE", ("fs", "memory", "s3", "postgres")),
        (build_lock_driver, "lock_backend", "LOCK_BACKEND", ("local", "redis", "postgres", "memory")),
        (build_key_manager, "kms_backend", "KMS_BACKEND", ("local", "vault", "transit", "none")),
    ],
    ids=["storage", "locks", "kms"],
)
def test_registries_refuse_unknown_names(env, build, field, setting, valid):
    config = dataclasses.replace(load(env), **{field: "no-such-driver"})
    with pytest.raises(ConfigError) as caught:
        build(config)
    message = str(caught.value)
    assert setting in message
    assert "no-such-driver" in message
    for name in valid:
        assert name in message


@pytest.mark.parametrize(
    "given, used",
    [
        ("postgresql://u:p@db:5432/statesman", "postgresql+psycopg2://u:p@db:5432/statesman"),
        ("postgres://u@db/statesman", "postgresql+psycopg2://u@db/statesman"),
        ("mysql://root@db/statesman", "mysql+pymysql://root@db/statesman"),
        ("postgresql+psycopg2://u@db/s", "postgresql+psycopg2://u@db/s"),
        ("sqlite:////var/lib/statesman/taco.db", "sqlite:////var/lib/statesman/taco.db"),
    ],
)
def test_a_database_url_without_a_driver_gets_the_installed_one(tmp_path, given: str, used: str) -> None:
    env = {"STATESMAN_ENV": "development", "DATA_DIR": str(tmp_path), "DATABASE_URL": given}
    assert load_config(env).database_url == used
