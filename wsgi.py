"""The WSGI entry point for gunicorn: refuses to serve when the database schema is missing or behind."""

from app import create_app
from app.cli.preflight import require_current_schema

app = create_app()
require_current_schema(app)
