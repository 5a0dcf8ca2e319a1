"""Reachability of the real services tests use (PostgreSQL, Redis, MariaDB).

Locally a missing service skips the test with a reason; with ``STATESMAN_REQUIRE_SERVICES=1`` (CI) it fails.
"""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_URL = os.environ.get("STATESMAN_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("STATESMAN_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("STATESMAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

SERVICE_PORTS = {"postgres": ("127.0.0.1", 5432), "redis": ("127.0.0.1", 6379), "mysql": ("127.0.0.1", 3306)}


def services_required() -> bool:
    """True when a missing service must fail the run (CI)."""
    return os.environ.get("STATESMAN_REQUIRE_SERVICES", "") not in ("", "0", "false")


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip (locally) or fail (CI) the calling test when service ``name`` is not reachable."""
    host, port = SERVICE_PORTS[name]
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if services_required():
        pytest.fail(f"{message} and STATESMAN_REQUIRE_SERVICES=1")
    pytest.skip(message)
