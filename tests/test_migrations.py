"""``flask db upgrade`` builds the whole schema on an empty database; the server refuses a missing or old schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask

import app.models  # noqa: F401  (every model registers its table on db.metadata)
from app import create_app
from app.cli.preflight import require_current_schema
from app.extensions import db, drivers
from app.models import Organization, StateVersion, Workspace
from app.repositories.migration_status import head_revision, schema_status
from tests.conftest import METADATA_BACKENDS, _scratch_database, base_config, close_app, migrate_database
from tests.services import MYSQL_URL, POSTGRES_URL


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


@pytest.fixture(params=METADATA_BACKENDS)
def own_database(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of this test's own, migrated to head (the test moves its revision, so it is never shared)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'own.db'}"
        migrate_database(base_config(tmp_path, url))
        yield url
        return
    yield from _scratch_database(
        request.param, {"postgres": POSTGRES_URL, "mysql": MYSQL_URL}[request.param], tmp_path_factory
    )


def test_json_copies_revision_goes_down_and_up_keeping_versions(own_database: str, tmp_path: Path) -> None:
    """0003 on each metadata backend: downgrading drops the JSON-copy columns and keeps every version row."""
    application = create_app(base_config(tmp_path, own_database))
    try:
        with application.app_context():
            org = Organization(name="acme")
            db.session.add(org)
            db.session.flush()
            workspace = Workspace(org_id=org.id, name="prod", current_version_id="sv-1", version_counter=1)
            db.session.add(workspace)
            db.session.flush()
            db.session.add(
                StateVersion(
                    id="sv-1",
                    workspace_id=workspace.id,
                    number=1,
                    serial=1,
                    md5="0" * 32,
                    sha256="0" * 64,
                    size=1,
                    storage_key="k",
                    kms_key_id="local",
                    json_state_key="j",
                    json_state_size=2,
                )
            )
            db.session.commit()
            db.session.remove()
            flask_migrate.downgrade(revision="0002")
            inspector = sa.inspect(db.engine)
            assert not {c["name"] for c in inspector.get_columns("state_versions")} & JSON_COLUMNS
            assert "ix_state_versions_workspace_created" not in {
                i["name"] for i in inspector.get_indexes("state_versions")
            }
            assert db.session.execute(sa.text("SELECT id FROM state_versions")).scalars().all() == ["sv-1"]
            db.session.remove()
            flask_migrate.upgrade()
            inspector = sa.inspect(db.engine)
            assert {c["name"] for c in inspector.get_columns("state_versions")} >= JSON_COLUMNS
            assert "ix_state_versions_workspace_created" in {i["name"] for i in inspector.get_indexes("state_versions")}
            version = db.session.get(StateVersion, "sv-1")
            assert version is not None and version.json_state_key is None and version.serial == 1
            assert schema_status(db.engine).current
    finally:
        close_app(application)


JSON_COLUMNS = {
    "json_state_key",
    "json_state_sha256",
    "json_state_size",
    "json_state_kms_key_id",
    "json_outputs_key",
    "json_outputs_sha256",
    "json_outputs_kms_key_id",
}


def test_tag_rows_revision_moves_tags_both_ways_and_keeps_versions(own_database: str, tmp_path: Path) -> None:
    """0004 on each metadata backend: tag_names become rows and back; no state version is lost on the way.

    On SQLite, dropping a column rebuilds the table; with foreign keys on, that would cascade-delete every
    state version, so this also proves the migrations run with foreign keys off there.
    """
    application = create_app(base_config(tmp_path, own_database))
    try:
        with application.app_context():
            flask_migrate.downgrade(revision="0003")
            db.session.remove()
            connection = db.session.connection()
            connection.execute(
                sa.text(
                    "INSERT INTO organizations (id, name, display_name, created_at, updated_at) "
                    "VALUES ('org-1', 'acme', 'acme', '2026-01-01', '2026-01-01')"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO workspaces (id, org_id, name, execution_mode, terraform_version, auto_apply, "
                    "working_directory, tag_names, engine, current_version_id, version_counter, created_at, "
                    "updated_at) VALUES ('ws-1', 'org-1', 'prod', 'local', 'latest', false, '', :tags, 'terraform', "
                    "'sv-1', 1, '2026-01-01', '2026-01-01')"
                ),
                {"tags": '["app", "team:core", "app"]'},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO state_versions (id, workspace_id, number, serial, lineage, md5, sha256, size, "
                    "storage_key, kms_key_id, outputs, resource_count, status, created_at) VALUES ('sv-1', 'ws-1', "
                    "1, 1, 'l', :md5, :sha, 1, 'k', 'local', '{}', 0, 'finalized', '2026-01-01')"
                ),
                {"md5": "0" * 32, "sha": "0" * 64},
            )
            db.session.commit()
            flask_migrate.upgrade()
            db.session.remove()
            workspace = db.session.get(Workspace, "ws-1")
            assert workspace is not None
            assert {tag.key: tag.value for tag in workspace.tags} == {"app": "", "team:core": ""}
            assert db.session.get(StateVersion, "sv-1") is not None
            workspace.tags[0].value = "web"
            db.session.commit()
            db.session.remove()
            flask_migrate.downgrade(revision="0003")
            rows = db.session.execute(sa.text("SELECT tag_names FROM workspaces")).scalars().all()
            assert [json.loads(r) if isinstance(r, str) else r for r in rows] == [["app", "team:core"]]
            assert db.session.execute(sa.text("SELECT id FROM state_versions")).scalars().all() == ["sv-1"]
            db.session.remove()
            flask_migrate.upgrade()
            assert schema_status(db.engine).current
    finally:
        close_app(application)
