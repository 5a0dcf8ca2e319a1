"""Lock drivers and their registry (``LOCK_BACKEND``).

Each registry entry imports its driver's module when it is chosen, so the redis client library is loaded only by
servers that lock in Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.drivers import build_from_registry
from config import Config

if TYPE_CHECKING:
    from app.drivers.locks.base import LockDriver


def _local(config: Config) -> LockDriver:
    from app.drivers.locks.sql import SqlLockDriver

    return SqlLockDriver.local_from_config(config)


def _redis(config: Config) -> LockDriver:
    from app.drivers.locks.redis import RedisLockDriver

    return RedisLockDriver.from_config(config)


def _postgres(config: Config) -> LockDriver:
    from app.drivers.locks.sql import SqlLockDriver

    return SqlLockDriver.postgres_from_config(config)


def _memory(config: Config) -> LockDriver:
    from app.drivers.locks.memory import MemoryLockDriver

    return MemoryLockDriver.from_config(config)


LOCK_DRIVERS = {"local": _local, "redis": _redis, "postgres": _postgres, "memory": _memory}


def build_lock_driver(config: Config) -> LockDriver:
    """The configured lock driver; unknown names fail fast."""
    driver: LockDriver = build_from_registry("lock", "LOCK_BACKEND", config.lock_backend, LOCK_DRIVERS, config)
    return driver
