"""Driver fixtures: each kind's fixture is parametrized over every driver of that kind.

Drivers that need a service (PostgreSQL, Redis, S3, Vault) get it from ``tests/services.py``, which skips
locally and fails under ``STATESMAN_REQUIRE_SERVICES=1`` when the service is missing.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.drivers.kms.local import LocalKeyManager
from app.drivers.kms.plaintext import PlaintextKeyManager
from app.drivers.locks.memory import MemoryLockDriver
from app.drivers.locks.sql import SqlLockDriver, lock_table
from app.drivers.sql import create_engine
from app.drivers.storage.fs import FilesystemStorage
from app.drivers.storage.memory import MemoryStorage
from tests.drivers import kms_services, lock_services, storage_services


def _fs_storage(tmp_path: Path, request: pytest.FixtureRequest) -> FilesystemStorage:
    return FilesystemStorage(tmp_path / "states")


def _memory_storage(tmp_path: Path, request: pytest.FixtureRequest) -> MemoryStorage:
    return MemoryStorage()


STORAGE_FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], object]] = {
    "fs": _fs_storage,
    "memory": _memory_storage,
    **storage_services.FACTORIES,
}


def _local_locks(tmp_path: Path, request: pytest.FixtureRequest) -> SqlLockDriver:
    engine = create_engine(f"sqlite:///{tmp_path / 'locks.db'}")
    table = lock_table("locks")
    table.create(engine)
    return SqlLockDriver(engine, table, "local")


def _memory_locks(tmp_path: Path, request: pytest.FixtureRequest) -> MemoryLockDriver:
    return MemoryLockDriver()


LOCK_FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], object]] = {
    "local": _local_locks,
    "memory": _memory_locks,
    **lock_services.FACTORIES,
}

TEST_KEY = base64.b64decode("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=")


def _local_kms(tmp_path: Path, request: pytest.FixtureRequest) -> LocalKeyManager:
    return LocalKeyManager(TEST_KEY, [os.urandom(32)])


def _none_kms(tmp_path: Path, request: pytest.FixtureRequest) -> PlaintextKeyManager:
    return PlaintextKeyManager()


KMS_FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], object]] = {
    "local": _local_kms,
    "none": _none_kms,
    **kms_services.FACTORIES,
}


def _built(
    factories: dict[str, Callable[[Path, pytest.FixtureRequest], object]],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> Iterator[object]:
    driver = factories[request.param](tmp_path, request)
    yield driver
    close = getattr(driver, "close", None)
    if close:
        close()


@pytest.fixture(params=list(STORAGE_FACTORIES))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    yield from _built(STORAGE_FACTORIES, request, tmp_path)


@pytest.fixture(params=list(LOCK_FACTORIES))
def locks(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    yield from _built(LOCK_FACTORIES, request, tmp_path)


@pytest.fixture(params=list(KMS_FACTORIES))
def kms(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    yield from _built(KMS_FACTORIES, request, tmp_path)


@pytest.fixture(params=[name for name in KMS_FACTORIES if name != "none"])
def encrypting_kms(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    yield from _built(KMS_FACTORIES, request, tmp_path)
