"""Locks as rows in a SQL table: acquisition is one atomic ``INSERT ... ON CONFLICT DO NOTHING``.

Serves the ``local`` driver (the metadata database, shared by every gunicorn worker of the host) and the
``postgres`` driver (a PostgreSQL table shared by every host). No advisory locks: they break behind PgBouncer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.core.clock import utcnow
from app.core.errors import BackendUnavailable, LockConflict
from app.core.locks import HeldLock
from app.drivers.sql import Name, Timestamp, create_engine, postgres_url
from config import Config

_RACE_RETRIES = 5


def lock_table(name: str, metadata: sa.MetaData | None = None) -> sa.Table:
    """The lock table's shape, the one definition: ``app.models`` puts it on the metadata the migrations create."""
    return sa.Table(
        name,
        metadata or sa.MetaData(),
        sa.Column("lock_key", Name(255), primary_key=True),
        sa.Column("lock_id", Name(255), nullable=False),
        sa.Column("info", sa.Text, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
    )


class SqlLockDriver:
    """A row per locked key; the primary key decides races between workers and hosts."""

    def __init__(
        self, engine: Engine, table: sa.Table, name: str, ttl: timedelta | None = None, *, metadata: bool = False
    ) -> None:
        self.engine = engine
        self.table = table
        self.name = name
        self.ttl = ttl
        # MySQL's REPEATABLE READ would answer the holder's read inside the caller's transaction from the snapshot of
        # its first read (the workspace), not from what the failed insert just met: it keeps transactions of its own.
        self.shares_metadata_database = metadata and engine.dialect.name in ("sqlite", "postgresql")
        self._statements = _Statements(table, engine.dialect.name)

    @classmethod
    def local_from_config(cls, config: Config) -> SqlLockDriver:
        ttl = timedelta(seconds=config.lock_ttl_seconds) if config.lock_ttl_seconds else None
        return cls(create_engine(config.database_url), lock_table("locks"), "local", ttl, metadata=True)

    @classmethod
    def postgres_from_config(cls, config: Config) -> SqlLockDriver:
        """Locks in ``LOCK_POSTGRES_TABLE`` on ``POSTGRES_CONNECTION`` or the metadata database; creates the table."""
        ttl = timedelta(seconds=config.lock_ttl_seconds) if config.lock_ttl_seconds else None
        engine = create_engine(postgres_url(config, "LOCK_BACKEND=postgres"))
        table = lock_table(config.lock_postgres_table)
        metadata = config.postgres_connection in (None, config.database_url)
        if config.lock_postgres_table == "locks" and metadata:
            # The metadata database's "locks" table belongs to the migrations (the local driver's table, same
            # shape): creating it here would make `flask db upgrade` of a fresh database fail on it.
            return cls(engine, table, "postgres", ttl, metadata=True)
        try:
            with _translate_errors("postgres lock"), engine.begin() as conn:
                # Workers starting together race between CREATE's existence check and the CREATE; a
                # transaction-scoped advisory lock (unlike a session-level one, safe behind PgBouncer) orders them.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"statesman:{table.name}"))))
                table.create(conn, checkfirst=True)
        except BackendUnavailable:
            engine.dispose()
            raise
        return cls(engine, table, "postgres", ttl, metadata=metadata)

    def acquire(self, key: str, lock_id: str, info: str, within: sa.Connection | None = None) -> HeldLock:
        now = utcnow()
        expires = now + self.ttl if self.ttl else None
        row = {"lock_key": key, "lock_id": lock_id, "info": info, "created_at": now, "expires_at": expires}
        with self._translated():
            for _ in range(_RACE_RETRIES):
                with self._transaction(within) as conn:
                    if conn.execute(self._statements.insert, row).rowcount == 1:
                        return HeldLock(lock_id, info, now, expires)
                    holder = self._select(conn, key)
                    if holder is None:
                        continue  # released between our insert and our read: try again
                    if holder.lock_id == lock_id:
                        return holder
                    if not self._expired(holder, now):
                        raise LockConflict("workspace is locked", holder)
                    self._delete(conn, key, holder.lock_id)
        raise BackendUnavailable(f"{self.name} lock", "lock table kept changing; try again")

    def release(self, key: str, lock_id: str | None, within: sa.Connection | None = None) -> HeldLock | None:
        with self._translated():
            for _ in range(_RACE_RETRIES):
                with self._transaction(within) as conn:
                    released = self._delete_held(conn, key, lock_id) if lock_id is not None else None
                    if released is not None:
                        return released  # the common unlock: one statement
                    holder = self._select(conn, key)
                    if holder is None:
                        return None
                    if lock_id is not None and holder.lock_id != lock_id:
                        raise LockConflict("workspace is locked by another lock ID", holder)
                    if self._delete(conn, key, holder.lock_id):
                        return holder
        raise BackendUnavailable(f"{self.name} lock", "lock table kept changing; try again")

    def get(self, key: str, within: sa.Connection | None = None) -> HeldLock | None:
        with self._translated(), self._connection(within) as conn:
            holder = self._select(conn, key)
        return None if holder is None or self._expired(holder, utcnow()) else holder

    def get_many(self, keys: Sequence[str], within: sa.Connection | None = None) -> dict[str, HeldLock]:
        if not keys:
            return {}
        now = utcnow()
        with self._translated(), self._connection(within) as conn:
            rows = conn.execute(self._statements.select_many, {"keys": list(keys)}).all()
        found = {row.lock_key: _held(row) for row in rows}
        return {key: holder for key, holder in found.items() if not self._expired(holder, now)}

    def check(self) -> None:
        with self._translated(), self.engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(self.table).where(self.table.c.lock_key == ""))

    def close(self) -> None:
        self.engine.dispose()

    def _transaction(self, within: sa.Connection | None) -> AbstractContextManager[sa.Connection]:
        """A transaction of the driver's own, or the caller's (``within``), which the caller commits."""
        return self.engine.begin() if within is None else self._callers(within)

    def _connection(self, within: sa.Connection | None) -> AbstractContextManager[sa.Connection]:
        """A connection of the driver's own for a read, or the caller's (``within``)."""
        return self.engine.connect() if within is None else self._callers(within)

    def _callers(self, within: sa.Connection) -> AbstractContextManager[sa.Connection]:
        if not self.shares_metadata_database:
            raise ValueError(f"the {self.name} lock table is not in the caller's database")
        return nullcontext(within)

    def _select(self, conn: sa.Connection, key: str) -> HeldLock | None:
        found = conn.execute(self._statements.select, {"key": key}).first()
        return _held(found) if found else None

    def _delete_held(self, conn: sa.Connection, key: str, lock_id: str) -> HeldLock | None:
        """Delete the lock when ``lock_id`` holds it and return it, in one statement where the database can
        (``DELETE ... RETURNING``); None when it did not hold it, or the database cannot (MySQL)."""
        if not conn.dialect.delete_returning:
            return None
        found = conn.execute(self._statements.delete_returning, {"key": key, "lock_id": lock_id}).first()
        return _held(found, lock_id) if found else None

    def _delete(self, conn: sa.Connection, key: str, lock_id: str) -> bool:
        return bool(conn.execute(self._statements.delete, {"key": key, "lock_id": lock_id}).rowcount)

    @staticmethod
    def _expired(holder: HeldLock, now: datetime) -> bool:
        return holder.expires_at is not None and holder.expires_at <= now

    def _translated(self) -> AbstractContextManager[None]:
        return _translate_errors(f"{self.name} lock")


def _held(row: Any, lock_id: str | None = None) -> HeldLock:
    """The lock a row describes (``lock_id`` when the statement did not return it)."""
    return HeldLock(lock_id or row.lock_id, row.info, row.created_at, row.expires_at)


class _Statements:
    """The driver's statements, built once with bound parameters: building one cost more than running it."""

    def __init__(self, t: sa.Table, dialect: str) -> None:
        held = sa.and_(t.c.lock_key == sa.bindparam("key"), t.c.lock_id == sa.bindparam("lock_id"))
        self.insert = _insert_ignoring_conflict(t, dialect)
        self.select = sa.select(t.c.lock_id, t.c.info, t.c.created_at, t.c.expires_at).where(
            t.c.lock_key == sa.bindparam("key")
        )
        self.select_many = sa.select(t.c.lock_key, t.c.lock_id, t.c.info, t.c.created_at, t.c.expires_at).where(
            t.c.lock_key.in_(sa.bindparam("keys", expanding=True))
        )
        self.delete = sa.delete(t).where(held)
        self.delete_returning = sa.delete(t).where(held).returning(t.c.info, t.c.created_at, t.c.expires_at)


def _insert_ignoring_conflict(t: sa.Table, dialect: str) -> Any:
    """An INSERT of one lock row (values bound at execution) that does nothing when the key is taken."""
    if dialect == "postgresql":
        return postgresql.insert(t).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(t).on_conflict_do_nothing()
    if dialect in ("mysql", "mariadb"):
        return mysql.insert(t).prefix_with("IGNORE")
    raise NotImplementedError(f"SQL locks do not support {dialect}")


@contextmanager
def _translate_errors(backend: str) -> Iterator[None]:
    """Turn database driver errors into ``BackendUnavailable`` naming the lock backend."""
    try:
        yield
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise BackendUnavailable(backend, type(cause).__name__) from exc
