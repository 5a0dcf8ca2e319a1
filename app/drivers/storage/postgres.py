"""Objects as bytea rows of a PostgreSQL table (``STORAGE_POSTGRES_TABLE``, default ``states``).

The table belongs to the driver (as in the old server), so the driver creates it when it is missing. Reads fetch
the value in ``CHUNK_SIZE`` slices so a large state is never held whole, and the column is stored uncompressed
(``STORAGE EXTERNAL``) so that each slice is read directly instead of decompressing the value from its start.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.core.clock import utcnow
from app.core.errors import BackendUnavailable
from app.drivers.sql import create_engine, postgres_url
from app.drivers.storage.base import CHUNK_SIZE, ObjectNotFound, StoredObject
from config import Config

BACKEND = "postgres storage"


def storage_table(name: str, metadata: sa.MetaData | None = None) -> sa.Table:
    """The blob table's shape; creating it also switches ``data`` to uncompressed out-of-line storage."""
    table = sa.Table(
        name,
        metadata or sa.MetaData(),
        sa.Column("state_key", sa.String(512), primary_key=True),
        sa.Column("data", postgresql.BYTEA, nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("created_at", sa.DateTime),
    )
    sa.event.listen(table, "after_create", sa.DDL("ALTER TABLE %(fullname)s ALTER COLUMN data SET STORAGE EXTERNAL"))
    return table


class PostgresStorage:
    """A row per object; an upsert in one transaction makes each write whole or absent."""

    name = "postgres"

    def __init__(self, engine: Engine, table: sa.Table) -> None:
        self.engine = engine
        self.table = table

    @classmethod
    def from_config(cls, config: Config) -> PostgresStorage:
        storage = cls(
            create_engine(postgres_url(config, "OPENTACO_STORAGE=postgres")),
            storage_table(config.storage_postgres_table),
        )
        try:
            storage.create_table()
        except BaseException:
            storage.close()
            raise
        return storage

    def create_table(self) -> None:
        """Create the table unless it exists; concurrent workers starting together take turns."""
        lock_id = zlib.crc32(f"statesman storage table {self.table.name}".encode())
        with _translated(), self.engine.begin() as conn:
            # a transaction-level lock (safe behind PgBouncer): parallel CREATE TABLE IF NOT EXISTS can still collide
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_id)))
            self.table.create(conn, checkfirst=True)

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        data = bytearray()
        for chunk in chunks:
            data += chunk
        values = {"state_key": key, "data": data, "size": len(data), "created_at": utcnow()}
        insert = postgresql.insert(self.table).values(**values)
        upsert = insert.on_conflict_do_update(
            index_elements=[self.table.c.state_key],
            set_={"data": insert.excluded.data, "size": insert.excluded.size, "created_at": insert.excluded.created_at},
        )
        with _translated(), self.engine.begin() as conn:
            conn.execute(upsert)
        return len(data)

    def open(self, key: str) -> Iterator[bytes]:
        t = self.table
        query = sa.select(sa.func.octet_length(t.c.data), _row_version()).where(t.c.state_key == key)
        with _translated(), self.engine.connect() as conn:
            found = conn.execute(query).first()
        if found is None:
            raise ObjectNotFound(f"no stored object {key}")
        return self._slices(key, found[0], found[1])

    def _slices(self, key: str, size: int, row_version: str) -> Iterator[bytes]:
        t = self.table
        for offset in range(0, size, CHUNK_SIZE):
            # substring() counts from 1; each slice takes a pooled connection only while it is fetched
            piece = sa.func.substring(t.c.data, offset + 1, CHUNK_SIZE, type_=postgresql.BYTEA)
            query = sa.select(piece).where(t.c.state_key == key, _row_version() == row_version)
            with _translated(), self.engine.connect() as conn:
                chunk = conn.execute(query).scalar()
            if chunk is None:
                raise BackendUnavailable(BACKEND, f"object {key} was replaced or deleted while it was being read")
            yield chunk

    def delete(self, key: str) -> None:
        with _translated(), self.engine.begin() as conn:
            conn.execute(sa.delete(self.table).where(self.table.c.state_key == key))

    def list_keys(self, prefix: str = "") -> Iterator[StoredObject]:
        t = self.table
        size = sa.func.coalesce(t.c.size, sa.func.octet_length(t.c.data))
        query = sa.select(t.c.state_key, size, t.c.created_at).where(t.c.state_key.startswith(prefix, autoescape=True))
        with _translated(), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        # rows written before ``created_at`` was kept count as old: only a write in flight is ever young
        return iter([StoredObject(key, int(length), at or datetime.min) for key, length, at in rows])

    def list_incomplete(self) -> Iterator[StoredObject]:
        return iter(())  # an object is one upsert: a killed write rolls back and leaves nothing

    def discard_incomplete(self, key: str) -> None:
        return None

    def check(self) -> None:
        query = sa.select(sa.func.count()).select_from(self.table).where(self.table.c.state_key == "")
        with _translated(), self.engine.connect() as conn:
            conn.execute(query)

    def close(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()


def _row_version() -> sa.ColumnElement[str]:
    """The row's ``xmin``: it changes whenever the row is rewritten, so slices of a replaced object are refused."""
    return sa.literal_column("xmin::text", sa.String)


@contextmanager
def _translated() -> Iterator[None]:
    """Turn database driver errors raised inside the block into ``BackendUnavailable``."""
    try:
        yield
    except (DBAPIError, PoolTimeoutError) as exc:
        cause = getattr(exc, "orig", None) or exc
        raise BackendUnavailable(BACKEND, type(cause).__name__) from exc
