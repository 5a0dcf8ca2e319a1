"""Deadlock victims are recognised on the real servers, so ``retry_deadlocks`` repeats exactly those transactions."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from app.drivers.sql import is_deadlock
from tests.conftest import metadata_backends
from tests.services import MYSQL_URL, POSTGRES_URL, require_service


@pytest.fixture(params=metadata_backends("postgres", "mysql"))
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    require_service(request.param)
    found = sa.create_engine({"postgres": POSTGRES_URL, "mysql": MYSQL_URL}[request.param])
    yield found
    found.dispose()


def test_a_real_deadlock_is_recognised(engine: sa.Engine) -> None:
    table = f"deadlock_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v INTEGER)"))
        connection.execute(sa.text(f"INSERT INTO {table} VALUES (1, 0), (2, 0)"))
    both_hold_one = threading.Barrier(2)
    errors: list[DBAPIError] = []

    def lock_in_order(first: int, second: int) -> None:
        try:
            with engine.begin() as connection:
                connection.execute(sa.text(f"UPDATE {table} SET v = v + 1 WHERE id = {first}"))
                both_hold_one.wait(timeout=10)
                connection.execute(sa.text(f"UPDATE {table} SET v = v + 1 WHERE id = {second}"))
        except DBAPIError as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=lock_in_order, args=order) for order in ((1, 2), (2, 1))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(errors) == 1, errors  # the server broke the cycle by aborting one of the two
        assert is_deadlock(errors[0])
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE {table}"))


def test_other_database_errors_are_not_deadlocks(engine: sa.Engine) -> None:
    with pytest.raises(DBAPIError) as caught, engine.connect() as connection:
        connection.execute(sa.text("SELECT * FROM no_such_table_here"))
    assert not is_deadlock(caught.value)
