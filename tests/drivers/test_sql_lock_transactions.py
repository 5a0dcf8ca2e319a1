"""SQL lock drivers in the caller's transaction: a lock taken or released ``within`` a connection holds only once
that transaction commits, so a lock row and its audit event are written together or not at all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.core.errors import LockConflict
from app.drivers.locks.sql import SqlLockDriver, lock_table
from app.drivers.sql import create_engine
from tests.services import MYSQL_URL, POSTGRES_URL, require_service

INFO = '{"ID":"a","Operation":"OperationTypeApply","Who":"alice@host"}'


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlLockDriver]:
    """A driver whose lock table is in the caller's (metadata) database."""
    if request.param == "postgres":
        require_service("postgres")
        engine = create_engine(POSTGRES_URL)
        table = lock_table(f"test_locks_{uuid.uuid4().hex[:16]}")
    else:
        engine = create_engine(f"sqlite:///{tmp_path / 'metadata.db'}")
        table = lock_table("locks")
    table.create(engine)
    driver = SqlLockDriver(engine, table, "local", metadata=True)
    yield driver
    if request.param == "postgres":
        table.drop(engine)
    driver.close()


def test_a_lock_taken_within_a_transaction_holds_once_it_commits(shared: SqlLockDriver) -> None:
    assert shared.shares_metadata_database
    with shared.engine.connect() as conn:
        shared.acquire("ws-1", "a", INFO, conn)
        conn.rollback()
    assert shared.get("ws-1") is None
    with shared.engine.connect() as conn:
        shared.acquire("ws-1", "a", INFO, conn)
        conn.commit()
    assert shared.get("ws-1").lock_id == "a"


def test_reads_within_a_transaction_see_its_own_lock(shared: SqlLockDriver) -> None:
    shared.acquire("ws-2", "b", INFO)
    with shared.engine.connect() as conn:
        shared.acquire("ws-1", "a", INFO, conn)
        assert shared.get("ws-1", conn).lock_id == "a"
        assert set(shared.get_many(["ws-1", "ws-2", "ws-3"], conn)) == {"ws-1", "ws-2"}
        conn.rollback()
        assert shared.get("ws-1", conn) is None
        assert set(shared.get_many(["ws-1", "ws-2"], conn)) == {"ws-2"}


def test_a_release_within_a_transaction_that_rolls_back_keeps_the_lock(shared: SqlLockDriver) -> None:
    shared.acquire("ws-1", "a", INFO)
    with shared.engine.connect() as conn:
        assert shared.release("ws-1", "a", conn).lock_id == "a"
        conn.rollback()
    assert shared.get("ws-1").lock_id == "a"
    with shared.engine.connect() as conn:
        assert shared.release("ws-1", None, conn).lock_id == "a"
        conn.commit()
    assert shared.get("ws-1") is None


def test_conflicts_within_a_transaction_name_the_holder(shared: SqlLockDriver) -> None:
    shared.acquire("ws-1", "a", INFO)
    with shared.engine.connect() as conn:
        with pytest.raises(LockConflict) as caught:
            shared.acquire("ws-1", "b", INFO, conn)
        assert caught.value.holder.lock_id == "a"
        with pytest.raises(LockConflict):
            shared.release("ws-1", "b", conn)
        conn.commit()
    assert shared.get("ws-1").lock_id == "a"


def test_a_driver_on_another_database_refuses_the_callers_connection(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'locks.db'}")
    table = lock_table("locks")
    table.create(engine)
    driver = SqlLockDriver(engine, table, "postgres")
    assert not driver.shares_metadata_database
    with engine.connect() as conn:
        for call in (
            lambda: driver.acquire("ws-1", "a", INFO, conn),
            lambda: driver.release("ws-1", None, conn),
            lambda: driver.get("ws-1", conn),
            lambda: driver.get_many(["ws-1"], conn),
        ):
            with pytest.raises(ValueError, match="not in the caller's database"):
                call()
    driver.close()


def test_mysql_keeps_transactions_of_its_own() -> None:
    """Under REPEATABLE READ the holder's read would come from the caller's first snapshot, not the current row."""
    driver = SqlLockDriver(sa.create_engine(MYSQL_URL), lock_table("locks"), "local", metadata=True)
    assert not driver.shares_metadata_database
    driver.close()
