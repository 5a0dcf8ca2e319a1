"""The WSGI entry point for gunicorn: refuses to serve when the database schema is missing or behind."""

import click

from app import create_app
from app.cli.preflight import require_current_schema

app = create_app()
# Without FLASK_APP the flask command line finds this module too (also when installed), and its `db upgrade` is
# what creates the schema: only a server refuses a missing one. The flask command line loads apps inside a click
# context; gunicorn never does.
if click.get_current_context(silent=True) is None:
    require_current_schema(app)
