"""Is the database schema at the migrations' head? The server refuses to start when it is missing or behind."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

# Shipped inside the package (package data), so an installed server finds them from any directory.
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
_WITH_SAME_SETTINGS = "with the server's environment; `make migrate` in a checkout"


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database stands against the migration scripts."""

    current: bool
    database_revision: str | None
    head_revision: str | None
    message: str


def head_revision() -> str | None:
    """The newest migration revision shipped with the code."""
    from alembic.config import Config as AlembicConfig

    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(alembic_config).get_current_head()


def schema_status(engine: Engine) -> SchemaStatus:
    """Compare the database's Alembic revision with the head revision."""
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)  # it announces every context
    head = head_revision()
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    if revision == head:
        return SchemaStatus(True, revision, head, "schema is current")
    if revision is None:
        message = f"the database has no schema: run `flask db upgrade` first ({_WITH_SAME_SETTINGS})"
    else:
        message = (
            f"the database schema is at revision {revision} but this version needs {head}: "
            f"run `flask db upgrade` ({_WITH_SAME_SETTINGS})"
        )
    return SchemaStatus(False, revision, head, message)
