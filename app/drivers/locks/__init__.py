"""Lock drivers and their registry (``LOCK_BACKEND``)."""

from __future__ import annotations

from app.drivers import build_from_registry
from app.drivers.locks.base import LockDriver
from app.drivers.locks.memory import MemoryLockDriver
from app.drivers.locks.redis import RedisLockDriver
from app.drivers.locks.sql import SqlLockDriver
from config import Config

LOCK_DRIVERS = {
    "local": SqlLockDriver.local_from_config,
    "redis": RedisLockDriver.from_config,
    "postgres": SqlLockDriver.postgres_from_config,
    "memory": MemoryLockDriver.from_config,
}


def build_lock_driver(config: Config) -> LockDriver:
    """The configured lock driver; unknown names fail fast."""
    driver: LockDriver = build_from_registry("lock", "LOCK_BACKEND", config.lock_backend, LOCK_DRIVERS, config)
    return driver
