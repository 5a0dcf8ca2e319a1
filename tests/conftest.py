"""Fixtures layered config -> app -> client, with a freshly migrated database per test.

Every test that uses ``database_url`` runs once per metadata backend: SQLite, PostgreSQL and MariaDB/MySQL.
``STATESMAN_TEST_DATABASES`` (comma-separated, default ``sqlite,postgres,mysql``) narrows that list, here and in
the tests with database parameters of their own; ``make test-fast`` sets it to ``sqlite``.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import close_connections, create_app
from app.extensions import db, drivers
from config import Config
from tests.services import MYSQL_URL, POSTGRES_URL, require_service

ALL_METADATA_BACKENDS = ("sqlite", "postgres", "mysql")
METADATA_BACKENDS = os.environ.get("STATESMAN_TEST_DATABASES", ",".join(ALL_METADATA_BACKENDS)).split(",")
if unknown := set(METADATA_BACKENDS) - set(ALL_METADATA_BACKENDS):
    raise ValueError(f"STATESMAN_TEST_DATABASES: unknown {sorted(unknown)}; choose from {ALL_METADATA_BACKENDS}")
TEST_KEY = base64.b64decode("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=")


def metadata_backends(*kinds: str) -> list[str]:
    """Those of ``kinds`` that this run covers (all of them unless STATESMAN_TEST_DATABASES narrows the list)."""
    return [kind for kind in kinds if kind in METADATA_BACKENDS]


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


def drivers_of(app: Flask):
    with app.app_context():
        return drivers()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for every test (migrating per test would dominate the run time)."""
    directory = tmp_path_factory.mktemp("template")
    path = directory / "taco.db"
    migrate_database(base_config(directory, f"sqlite:///{path}"))
    return path


def _scratch_database(kind: str, server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Create an empty database on a real server, migrate it, yield its URL, drop it."""
    require_service(kind)
    name = f"statesman_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate_database(base_config(tmp_path_factory.mktemp(kind), url))
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated PostgreSQL database for this test session."""
    yield from _scratch_database("postgres", POSTGRES_URL, tmp_path_factory)


@pytest.fixture(scope="session")
def mysql_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated MariaDB/MySQL database for this test session."""
    yield from _scratch_database("mysql", MYSQL_URL, tmp_path_factory)


def empty_tables(url: str) -> None:
    """Remove every row (the schema stays): a fresh database per test at the cost of one DELETE per table.

    DELETE rather than TRUNCATE: InnoDB recreates a table on TRUNCATE, which costs seconds per test on MariaDB.
    """
    engine = _engines.get(url) or _engines.setdefault(url, sa.create_engine(url, poolclass=sa.pool.NullPool))
    with engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())


_engines: dict[str, sa.Engine] = {}


@pytest.fixture(params=METADATA_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """The metadata database of this test: SQLite, PostgreSQL and MariaDB in turn, each fresh."""
    if request.param == "sqlite":
        database = tmp_path / "taco.db"
        shutil.copyfile(sqlite_template, database)
        return f"sqlite:///{database}"
    url: str = request.getfixturevalue(f"{request.param}_database")
    empty_tables(url)
    return url


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    """A fresh database and data directory for this test."""
    return base_config(tmp_path, database_url)


def close_app(application: Flask) -> None:
    """Release an app's database connections and drivers."""
    close_connections(application)


@pytest.fixture
def app(config: Config) -> Iterator[Flask]:
    application = create_app(config)
    yield application
    close_app(application)


@pytest.fixture
def make_app(config: Config) -> Iterator[Callable[..., Flask]]:
    """Apps on this test's database with changed settings: ``make_app(max_state_size=1000)``."""
    made: list[Flask] = []

    def factory(**changes: object) -> Flask:
        application = create_app(dataclasses.replace(config, **changes))
        made.append(application)
        return application

    yield factory
    for application in made:
        close_app(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def sql_statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's metadata engine runs from now on (to count a request's queries)."""
    seen: list[str] = []
    from sqlalchemy import event

    from app.extensions import db

    with app.app_context():
        engine = db.engine

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine, "before_cursor_execute", note)
