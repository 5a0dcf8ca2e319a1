"""Fixtures for the agent's tests that need a server: the app with runs enabled, served on a local port."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: these tests are about the agent and Terraform, the databases have the agent API's tests."""
    database = tmp_path / "taco.db"
    shutil.copyfile(sqlite_template, database)
    return f"sqlite:///{database}"


@pytest.fixture
def runs_app(make_app: Any) -> Flask:
    # A short lease: heartbeats every second, so a cancel reaches the agent quickly.
    application: Flask = make_app(runs_enabled=True, run_lease_seconds=3, run_timeout_seconds=300)
    return application


@pytest.fixture
def served(runs_app: Flask) -> Iterator[str]:
    """The app on a local port (the agent talks HTTP); its base URL."""
    server = make_server("127.0.0.1", 0, runs_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
