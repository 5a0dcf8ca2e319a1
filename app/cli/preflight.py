"""Checks that must pass before the server takes traffic."""

from __future__ import annotations

import sys

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.repositories.migration_status import schema_status


def require_current_schema(app: Flask) -> None:
    """Exit with a clear message when the schema is missing or behind (``flask db upgrade`` fixes it)."""
    with app.app_context():
        try:
            status = schema_status(db.engine)
        except SQLAlchemyError as exc:
            sys.exit(
                f"statesman: cannot reach the metadata database ({db.engine.url.render_as_string()}): "
                f"{type(getattr(exc, 'orig', None) or exc).__name__}"
            )
        if not status.current:
            sys.exit(f"statesman: {status.message}")
