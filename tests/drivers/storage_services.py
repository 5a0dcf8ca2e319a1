"""Storage drivers that need a real service, added to the storage contract fixture by ``conftest.py``.

S3 runs against moto's standalone server over real HTTP (started once per session, one bucket per test);
PostgreSQL against the server from ``tests/services.py`` (one table per test, dropped afterwards).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from moto.server import ThreadedMotoServer

from app.drivers.sql import create_engine
from app.drivers.storage.postgres import PostgresStorage
from app.drivers.storage.s3 import S3Storage
from config import Config
from tests.services import POSTGRES_URL, require_service

S3_REGION = "us-east-1"
S3_ACCESS_KEY = "statesman-test-access-key"
S3_SECRET_KEY = "statesman-test-secret-key"
S3_PREFIX = "statesman/states"


@dataclass
class _Moto:
    """The session's moto server and a plain client for setting up and inspecting buckets."""

    server: ThreadedMotoServer
    endpoint: str
    admin: Any


_moto: list[_Moto] = []


def _session_moto(request: pytest.FixtureRequest) -> _Moto:
    if not _moto:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        _moto.append(_Moto(server, endpoint, s3_admin_client(endpoint)))
        request.config.add_cleanup(_stop_moto)
    return _moto[0]


def _stop_moto() -> None:
    moto = _moto.pop()
    moto.admin.close()
    moto.server.stop()
    moto.server._server.server_close()  # type: ignore[union-attr]  # stop() leaves the listening socket open


def s3_config(endpoint: str, bucket: str, **changes: Any) -> Config:
    """An S3 storage config with dummy credentials given through the config, not the environment."""
    base = Config(
        storage_backend="s3",
        s3_bucket=bucket,
        s3_region=S3_REGION,
        s3_prefix=S3_PREFIX,
        s3_endpoint=endpoint,
        s3_path_style=True,
        s3_use_ssl=False,
        s3_access_key=S3_ACCESS_KEY,
        s3_secret_key=S3_SECRET_KEY,
        testing=True,
    )
    return replace(base, **changes)


def s3_admin_client(endpoint: str) -> Any:
    """A plain boto3 client, independent of the driver."""
    return boto3.session.Session().client(
        "s3",
        region_name=S3_REGION,
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
    )


def new_s3_bucket(request: pytest.FixtureRequest) -> tuple[str, str, Any]:
    """A fresh bucket on the session's moto server: ``(endpoint, bucket, admin client)``."""
    moto = _session_moto(request)
    bucket = f"statesman-{uuid.uuid4().hex[:16]}"
    moto.admin.create_bucket(Bucket=bucket)
    return moto.endpoint, bucket, moto.admin


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _s3_storage(tmp_path: Path, request: pytest.FixtureRequest) -> S3Storage:
    endpoint, bucket, _ = new_s3_bucket(request)
    return S3Storage.from_config(s3_config(endpoint, bucket))


def postgres_config(request: pytest.FixtureRequest) -> Config:
    """A postgres storage config with a table of its own, dropped after the test."""
    require_service("postgres")
    table = f"states_test_{uuid.uuid4().hex[:12]}"
    request.addfinalizer(lambda: _drop_table(table))
    return Config(
        storage_backend="postgres", postgres_connection=POSTGRES_URL, storage_postgres_table=table, testing=True
    )


def _drop_table(name: str) -> None:
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
    finally:
        engine.dispose()


def _postgres_storage(tmp_path: Path, request: pytest.FixtureRequest) -> PostgresStorage:
    return PostgresStorage.from_config(postgres_config(request))


FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], object]] = {
    "s3": _s3_storage,
    "postgres": _postgres_storage,
}
