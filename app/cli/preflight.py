"""Checks that must pass before the server takes traffic: each failure is one line naming the thing and the fix."""

from __future__ import annotations

import sys

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from app.core.errors import BackendUnavailable
from app.drivers.sql import describe_connection_failure
from app.extensions import db, drivers
from app.repositories.migration_status import schema_status


def require_current_schema(app: Flask) -> None:
    """Exit with a clear message when the database cannot be used or its schema is missing or behind."""
    with app.app_context():
        try:
            status = schema_status(db.engine)
        except SQLAlchemyError as exc:
            sys.exit(f"statesman: {describe_connection_failure(db.engine.url, exc)}")
        if not status.current:
            sys.exit(f"statesman: {status.message}")


def require_reachable_backends(app: Flask) -> None:
    """Exit with one line from the driver when the storage (a missing bucket) or the lock backend cannot be used."""
    with app.app_context():
        active = drivers()
        for driver in (active.storage, active.locks):
            try:
                driver.check()
            except BackendUnavailable as exc:
                sys.exit(f"statesman: {exc.details.get('startup') or exc.message}")
