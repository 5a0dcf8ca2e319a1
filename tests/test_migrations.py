"""``flask db upgrade`` builds the whole schema on an empty database; the server refuses a missing or old schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask

import app.models  # noqa: F401  (every model registers its table on db.metadata)
from app import create_app
from app.cli.preflight import require_current_schema
from app.extensions import db
from app.runtime import drivers
from app.schema import head_revision, schema_status
from tests.conftest import base_config


@pytest.fixture
def empty_app(tmp_path: Path) -> Iterator[Flask]:
    """An app on an EMPTY SQLite file (no tables at all)."""
    path = tmp_path / "empty.db"
    application = create_app(base_config(tmp_path, f"sqlite:///{path}"))
    assert path.exists()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
        drivers().close()


def tables(application: Flask) -> set[str]:
    with application.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def model_tables() -> set[str]:
    return set(db.metadata.tables)


def test_empty_database_reports_missing_schema(empty_app):
    assert tables(empty_app) == set()
    with empty_app.app_context():
        status = schema_status(db.engine)
    assert status.current is False
    assert status.database_revision is None
    assert status.head_revision == head_revision()
    assert "flask db upgrade" in status.message


def test_preflight_exits_on_missing_schema(empty_app):
    with pytest.raises(SystemExit) as exited:
        require_current_schema(empty_app)
    assert "flask db upgrade" in str(exited.value.code)


def test_upgrade_creates_every_model_table(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
        status = schema_status(db.engine)
        inspector = sa.inspect(db.engine)
        for name, table in db.metadata.tables.items():
            columns = {column["name"] for column in inspector.get_columns(name)}
            assert columns == set(table.columns.keys()), name
    assert model_tables() <= tables(empty_app)
    assert tables(empty_app) - model_tables() == {"alembic_version"}
    assert status.current is True
    assert status.database_revision == head_revision()
    require_current_schema(empty_app)  # does not exit


def test_upgrade_through_the_cli(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert model_tables() <= tables(empty_app)
    with empty_app.app_context():
        assert schema_status(db.engine).current


def test_upgrade_twice_is_harmless(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
        db.session.execute(
            sa.text(
                "INSERT INTO organizations (id, name, display_name, created_at, updated_at) "
                "VALUES ('org-1', 'acme', 'Acme', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        db.session.commit()
        flask_migrate.upgrade()
        assert schema_status(db.engine).current
        assert db.session.execute(sa.text("SELECT name FROM organizations")).scalars().all() == ["acme"]
    assert model_tables() <= tables(empty_app)


def test_downgrade_to_base_then_upgrade(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        status = schema_status(db.engine)
        assert status.current is False
        assert "flask db upgrade" in status.message
    with pytest.raises(SystemExit):
        require_current_schema(empty_app)
    with empty_app.app_context():
        flask_migrate.upgrade()
        assert schema_status(db.engine).current
    assert model_tables() <= tables(empty_app)


def test_schema_behind_is_reported(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
        db.session.execute(sa.text("UPDATE alembic_version SET version_num = 'old-revision'"))
        db.session.commit()
        status = schema_status(db.engine)
    assert status.current is False
    assert status.database_revision == "old-revision"
    assert "old-revision" in status.message
    assert "flask db upgrade" in status.message
    with pytest.raises(SystemExit) as exited:
        require_current_schema(empty_app)
    assert "flask db upgrade" in str(exited.value.code)


def test_migrated_database_serves_requests(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
    response = empty_app.test_client().get("/readyz")
    assert response.status_code == 200, response.json
