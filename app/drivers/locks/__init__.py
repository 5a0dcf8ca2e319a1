"""Lock drivers and their registry (``LOCK_BACKEND``).

Each registry entry imports its driver's module when it is chosen, so the redis client library is loaded only by
servers that lock in Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.drivers import build_from_registry, lazy
from config import Config

if TYPE_CHECKING:
    from app.drivers.locks.base import LockDriver


LOCK_DRIVERS = {
    "local": lazy("app.drivers.locks.sql:SqlLockDriver.local_from_config"),
    "redis": lazy("app.drivers.locks.redis:RedisLockDriver.from_config"),
    "postgres": lazy("app.drivers.locks.sql:SqlLockDriver.postgres_from_config"),
    "memory": lazy("app.drivers.locks.memory:MemoryLockDriver.from_config"),
}


def build_lock_driver(config: Config) -> LockDriver:
    """The configured lock driver; unknown names fail fast."""
    driver: LockDriver = build_from_registry("lock", "LOCK_BACKEND", config.lock_backend, LOCK_DRIVERS, config)
    return driver
