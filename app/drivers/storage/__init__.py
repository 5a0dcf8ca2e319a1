"""Storage drivers and their registry (``OPENTACO_STORAGE`` / ``STORAGE_BACKEND``).

Each registry entry imports its driver's module when it is chosen: S3 pulls in boto3 and botocore (and the
PostgreSQL driver psycopg2), which a server configured otherwise should not carry in every worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.drivers import build_from_registry, lazy
from config import Config

if TYPE_CHECKING:
    from app.drivers.storage.base import StorageDriver


STORAGE_DRIVERS = {
    "fs": lazy("app.drivers.storage.fs:FilesystemStorage.from_config"),
    "memory": lazy("app.drivers.storage.memory:MemoryStorage.from_config"),
    "s3": lazy("app.drivers.storage.s3:S3Storage.from_config"),
    "postgres": lazy("app.drivers.storage.postgres:PostgresStorage.from_config"),
}


def build_storage(config: Config) -> StorageDriver:
    """The configured storage driver; unknown names fail fast."""
    driver: StorageDriver = build_from_registry(
        "storage", "OPENTACO_STORAGE", config.storage_backend, STORAGE_DRIVERS, config
    )
    return driver
