"""Migration 0002 (RBAC) from an empty database on SQLite, PostgreSQL and MariaDB: upgrade, backfill, downgrade."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app import create_app
from app.extensions import db, drivers
from tests.conftest import METADATA_BACKENDS, base_config
from tests.services import MYSQL_URL, POSTGRES_URL, require_service


@pytest.fixture(params=METADATA_BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a database with no tables at all, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    require_service(request.param)
    server = POSTGRES_URL if request.param == "postgres" else MYSQL_URL
    name = f"statesman_mig_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def test_upgrade_backfills_roles_and_downgrades(empty_database: str, tmp_path: Path) -> None:
    import flask_migrate

    app = create_app(base_config(tmp_path, empty_database))
    try:
        with app.app_context():
            flask_migrate.upgrade(revision="0001")
            with db.engine.begin() as connection:  # what a server before RBAC holds: an org with two members
                connection.execute(
                    sa.text(
                        "INSERT INTO organizations (id, name, display_name, created_at, updated_at) "
                        "VALUES ('org-1', 'acme', 'Acme', :now, :now)"
                    ),
                    {"now": _now()},
                )
                for user in ("alice", "bob"):
                    connection.execute(
                        sa.text("INSERT INTO users (id, subject, created_at, updated_at) VALUES (:id, :s, :now, :now)"),
                        {"id": f"user-{user}", "s": user, "now": _now()},
                    )
                    connection.execute(
                        sa.text("INSERT INTO memberships (org_id, user_id, created_at) VALUES ('org-1', :u, :now)"),
                        {"u": f"user-{user}", "now": _now()},
                    )
                connection.execute(
                    sa.text(
                        "INSERT INTO workspaces (id, org_id, name, execution_mode, terraform_version, auto_apply, "
                        "working_directory, tag_names, version_counter, created_at, updated_at) VALUES "
                        "('ws-1', 'org-1', 'prod', 'local', 'latest', :f, '', '[]', 0, :now, :now)"
                    ),
                    {"f": False, "now": _now()},
                )

            flask_migrate.upgrade()
            with db.engine.connect() as connection:
                roles = connection.execute(
                    sa.text("SELECT name, builtin FROM roles WHERE org_id = 'org-1' ORDER BY name")
                ).all()
                assert [(name, bool(builtin)) for name, builtin in roles] == [("admin", True), ("default", True)]
                holders = connection.execute(
                    sa.text(
                        "SELECT u.subject, r.name FROM role_assignments a JOIN users u ON u.id = a.user_id "
                        "JOIN roles r ON r.id = a.role_id ORDER BY u.subject"
                    )
                ).all()
                assert [tuple(row) for row in holders] == [("alice", "admin"), ("bob", "admin")]
                assert connection.execute(sa.text("SELECT engine FROM workspaces")).scalar() == "terraform"
                diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
            assert [d for d in diff if _relevant(d)] == []

            from app.repositories import orgs, rbac

            alice = orgs.get_member(orgs.require_org("acme"), "alice")
            assert alice is not None
            assert [r.name for r in rbac.roles_of_member(orgs.require_org("acme"), alice)] == ["admin"]
            db.session.remove()  # an open read transaction would block DROP TABLE on PostgreSQL

            flask_migrate.downgrade(revision="0001")
            with db.engine.connect() as connection:
                tables = set(sa.inspect(connection).get_table_names())
            assert not tables & {"roles", "permissions", "role_permissions", "role_assignments"}
            flask_migrate.upgrade()
            db.session.remove()
            db.engine.dispose()
    finally:
        with app.app_context():
            drivers().close()


def _now():
    from app.core.clock import utcnow

    return utcnow()


def _relevant(difference: object) -> bool:
    """Schema differences that matter (type-rendering noise of dialect variants aside)."""
    kind = difference[0] if isinstance(difference, tuple) else difference[0][0]  # type: ignore[index]
    return kind not in ("modify_type", "modify_default", "modify_comment")
