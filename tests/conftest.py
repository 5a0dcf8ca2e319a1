"""Fixtures layered config -> app -> client, with a freshly migrated SQLite database per test."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extensions import db
from app.runtime import drivers
from config import Config

TEST_KEY = base64.b64decode("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=")


def base_config(data_dir: Path, database_url: str) -> Config:
    """A production-mode config on ``data_dir`` with fixed test keys."""
    return Config(
        environment="production",
        data_dir=data_dir,
        storage_backend="fs",
        storage_fs_dir=data_dir / "states",
        lock_backend="local",
        kms_backend="local",
        kms_key=TEST_KEY,
        database_url=database_url,
        secret_key=b"test-signing-secret",
        web_concurrency=1,
        testing=True,
    )


def migrate_database(config: Config) -> None:
    """Apply every migration to ``config.database_url`` with Flask-Migrate (as ``flask db upgrade`` does)."""
    import flask_migrate

    app = create_app(config)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    drivers_of(app).close()


def drivers_of(app: Flask):  # noqa: ANN201 - test helper
    with app.app_context():
        return drivers()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for every test (migrating per test would dominate the run time)."""
    directory = tmp_path_factory.mktemp("template")
    path = directory / "taco.db"
    migrate_database(base_config(directory, f"sqlite:///{path}"))
    return path


@pytest.fixture
def config(tmp_path: Path, sqlite_template: Path) -> Config:
    """A fresh database and data directory for this test."""
    database = tmp_path / "taco.db"
    shutil.copyfile(sqlite_template, database)
    return base_config(tmp_path, f"sqlite:///{database}")


@pytest.fixture
def app(config: Config) -> Iterator[Flask]:
    application = create_app(config)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
        drivers().close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
