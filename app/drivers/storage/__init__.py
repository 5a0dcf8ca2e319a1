"""Storage drivers and their registry (``OPENTACO_STORAGE`` / ``STORAGE_BACKEND``)."""

from __future__ import annotations

from app.drivers import build_from_registry
from app.drivers.storage.base import StorageDriver
from app.drivers.storage.fs import FilesystemStorage
from app.drivers.storage.memory import MemoryStorage
from app.drivers.storage.postgres import PostgresStorage
from app.drivers.storage.s3 import S3Storage
from config import Config

STORAGE_DRIVERS = {
    "fs": FilesystemStorage.from_config,
    "memory": MemoryStorage.from_config,
    "s3": S3Storage.from_config,
    "postgres": PostgresStorage.from_config,
}


def build_storage(config: Config) -> StorageDriver:
    """The configured storage driver; unknown names fail fast."""
    driver: StorageDriver = build_from_registry(
        "storage", "OPENTACO_STORAGE", config.storage_backend, STORAGE_DRIVERS, config
    )
    return driver
