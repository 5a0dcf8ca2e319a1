"""Engine settings every SQL connection of the process gets (metadata, SQL locks, SQL storage), and the column
types their tables share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError

from config import Config, ConfigError

SQLITE_BUSY_TIMEOUT_MS = 10000
DEADLOCK_ATTEMPTS = 3
_POSTGRES_DEADLOCK = "40P01"
_MYSQL_DEADLOCK_ERRNOS = (1213, 1205)  # deadlock victim; lock wait timeout (the statement may simply run again)
T = TypeVar("T")
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5

# Naive UTC (SQLite and MySQL have no time zones); MySQL's DATETIME would drop the microseconds.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def Name(length: int) -> sa.types.TypeEngine[str]:
    """A case-sensitive string: MySQL's default collation would make ``Prod`` and ``prod`` the same name."""
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL lets readers run beside the one writer; the busy timeout makes writers queue instead of failing."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def engine_options(url: str) -> dict[str, Any]:
    """Pool options suited to the backend behind ``url``."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_recycle": 1800, "pool_size": 5, "max_overflow": 10}


def create_engine(url: str) -> Engine:
    """A standalone engine (drivers that keep their own connections)."""
    return sa.create_engine(url, **engine_options(url))


def postgres_url(config: Config, purpose: str) -> str:
    """The SQLAlchemy URL of ``POSTGRES_CONNECTION`` (URL or libpq ``key=value`` string), else the query database.

    ``purpose`` (e.g. ``LOCK_BACKEND=postgres``) names the setting that needs PostgreSQL in the error message.
    """
    setting = "POSTGRES_CONNECTION" if config.postgres_connection else "DATABASE_URL"
    value = config.postgres_connection or config.database_url
    url = _url_from_dsn(value) if "://" not in value else _parse_url(value)
    if url is None:
        raise ConfigError(f"{purpose}: {setting}: not a valid database URL or libpq connection string")
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            f"{purpose} needs a PostgreSQL database: set POSTGRES_CONNECTION, or use OPENTACO_QUERY_BACKEND=postgres "
            f"or a PostgreSQL DATABASE_URL (the {setting} database is {url.get_backend_name()})"
        )
    if url.get_driver_name() in ("psycopg2", "psycopg") and "connect_timeout" not in url.query:
        # libpq otherwise waits for TCP to give up; an outage must answer quickly (requests and /readyz).
        url = url.update_query_dict({"connect_timeout": str(POSTGRES_CONNECT_TIMEOUT_SECONDS)})
    return url.render_as_string(hide_password=False)


def _parse_url(value: str) -> sa.URL | None:
    try:
        url = sa.make_url(value)
    except ArgumentError:
        return None
    if url.drivername in ("postgres", "postgresql"):
        # Go-style postgres:// DSNs and bare postgresql:// URLs: use psycopg2, the driver Statesman installs.
        url = url.set(drivername="postgresql+psycopg2")
    return url


def _url_from_dsn(dsn: str) -> sa.URL | None:
    # libpq's own parser; imported here because every process loads this module and most never use PostgreSQL.
    import psycopg2.extensions

    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return None
    return sa.URL.create(
        "postgresql+psycopg2",
        username=params.pop("user", None),
        password=params.pop("password", None),
        database=params.pop("dbname", None),
        query=params,  # host, port, sslmode, ...: passed to libpq as they are
    )


def describe_connection_failure(url: sa.URL, exc: BaseException) -> str:
    """One line saying which database could not be used and what to do; never the password.

    For start-up (``statesman``, ``flask db upgrade``): names the host and database, unlike request errors.
    """
    original = getattr(exc, "orig", None) or exc
    backend = url.get_backend_name()
    host = url.host or str(url.query.get("host", "localhost"))
    port = url.port or {"postgresql": 5432, "mysql": 3306}.get(backend)
    where = f"{host}:{port}" if port else host
    name = url.database or ""
    text = str(original)
    code = getattr(original, "pgcode", None) or (getattr(original, "args", None) or [None])[0]
    if backend == "sqlite":
        return f"cannot open the SQLite database {name}: {text.splitlines()[0] if text else type(original).__name__}"
    if code in ("3D000", 1049) or (backend == "postgresql" and f'database "{name}" does not exist' in text):
        create = f"createdb {name}" if backend == "postgresql" else f"CREATE DATABASE {name} CHARACTER SET utf8mb4"
        return f"database {name} does not exist on {where}: create it ({create}) and run flask db upgrade"
    if code in ("28P01", "28000", 1045) or "password authentication failed" in text:
        who = f"user {url.username} for database {name}"
        return f"the {backend} server at {where} refused {who}: check the user and password settings"
    if backend == "postgresql":
        settings = "OPENTACO_POSTGRES_HOST and OPENTACO_POSTGRES_PORT (or DATABASE_URL)"
    else:
        settings = "OPENTACO_MYSQL_HOST and OPENTACO_MYSQL_PORT (or DATABASE_URL)"
    return f"cannot connect to the {backend} server at {where} (database {name}): start it, or check {settings}"


def is_deadlock(exc: DBAPIError) -> bool:
    """True when the database aborted the transaction to break a deadlock (running it again is safe)."""
    original = exc.orig
    if getattr(original, "pgcode", None) == _POSTGRES_DEADLOCK:
        return True
    args: tuple[Any, ...] = getattr(original, "args", ())
    return bool(args) and args[0] in _MYSQL_DEADLOCK_ERRNOS


def retry_deadlocks(session: Any, work: Callable[[], T], attempts: int = DEADLOCK_ATTEMPTS) -> T:
    """Run ``work`` (one transaction that ends in a commit), again after a rollback when it lost a deadlock.

    InnoDB picks a victim when concurrent transactions lock the same rows in different orders; the victim's work
    did not happen, so repeating it is the expected answer rather than an error for the client.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as exc:
            session.rollback()
            if attempt == attempts or not is_deadlock(exc):
                raise
    raise AssertionError("unreachable")
