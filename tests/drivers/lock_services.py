"""Lock drivers that need a real service, added to the lock contract fixture by ``conftest.py``.

Each test gets its own Redis key prefix or PostgreSQL table, removed when the test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from app.drivers.locks import build_lock_driver
from config import Config
from tests.services import POSTGRES_URL, REDIS_URL, require_service


def redis_config(request: pytest.FixtureRequest, **changes: Any) -> Config:
    """A config for the redis lock driver with a fresh key prefix whose keys are deleted after the test."""
    require_service("redis")
    prefix = f"statesman-test:{uuid.uuid4().hex}:"
    request.addfinalizer(lambda: delete_redis_keys(prefix))
    return replace(Config(), lock_backend="redis", redis_url=REDIS_URL, redis_key_prefix=prefix, **changes)


def delete_redis_keys(prefix: str) -> None:
    """Delete every key under ``prefix`` on the test Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def postgres_config(request: pytest.FixtureRequest, **changes: Any) -> Config:
    """A config for the postgres lock driver with a fresh table that is dropped after the test."""
    require_service("postgres")
    table = f"test_locks_{uuid.uuid4().hex[:16]}"
    request.addfinalizer(lambda: drop_postgres_table(table))
    return replace(
        Config(), lock_backend="postgres", postgres_connection=POSTGRES_URL, lock_postgres_table=table, **changes
    )


def drop_postgres_table(name: str) -> None:
    """Drop table ``name`` on the test PostgreSQL if it exists."""
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
    finally:
        engine.dispose()


def _redis_locks(tmp_path: Path, request: pytest.FixtureRequest) -> object:
    return build_lock_driver(redis_config(request))


def _postgres_locks(tmp_path: Path, request: pytest.FixtureRequest) -> object:
    return build_lock_driver(postgres_config(request))


FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], object]] = {
    "redis": _redis_locks,
    "postgres": _postgres_locks,
}
