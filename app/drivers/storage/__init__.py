"""Storage drivers and their registry (``OPENTACO_STORAGE`` / ``STORAGE_BACKEND``).

Each registry entry imports its driver's module when it is chosen: S3 pulls in boto3 and botocore (and the
PostgreSQL driver psycopg2), which a server configured otherwise should not carry in every worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.drivers import build_from_registry
from config import Config

if TYPE_CHECKING:
    from app.drivers.storage.base import StorageDriver


def _fs(config: Config) -> StorageDriver:
    from app.drivers.storage.fs import FilesystemStorage

    return FilesystemStorage.from_config(config)


def _memory(config: Config) -> StorageDriver:
    from app.drivers.storage.memory import MemoryStorage

    return MemoryStorage.from_config(config)


def _s3(config: Config) -> StorageDriver:
    from app.drivers.storage.s3 import S3Storage

    return S3Storage.from_config(config)


def _postgres(config: Config) -> StorageDriver:
    from app.drivers.storage.postgres import PostgresStorage

    return PostgresStorage.from_config(config)


STORAGE_DRIVERS = {"fs": _fs, "memory": _memory, "s3": _s3, "postgres": _postgres}


def build_storage(config: Config) -> StorageDriver:
    """The configured storage driver; unknown names fail fast."""
    driver: StorageDriver = build_from_registry(
        "storage", "OPENTACO_STORAGE", config.storage_backend, STORAGE_DRIVERS, config
    )
    return driver
