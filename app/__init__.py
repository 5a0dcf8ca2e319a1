"""The application factory: ``create_app()`` reads as the list of steps that build the server."""

from __future__ import annotations

import logging
import os
import re
import uuid
from dataclasses import replace
from pathlib import Path

import click
from flask import Flask, g, request
from flask.wrappers import Response

from app.auth.oidc_jwt import JwtVerifier
from app.core.request_context import RequestIdFilter, current_request_id
from app.drivers import Drivers
from app.extensions import Services, db, drivers, install_services, migrate, services
from app.web.error_pages import register_error_handlers
from config import Config, ConfigError, load_config
from config.dev_secrets import ensure_development_secrets
from config.log_format import stderr_handler


def create_app(config: Config | None = None) -> Flask:
    """Build the app from ``config`` (default: the environment)."""
    config = ensure_development_secrets(config or _environment_config())
    app = Flask(__name__)
    configure_logging(config)
    configure_flask(app, config)
    init_extensions(app)
    init_drivers(app, config)
    init_sign_in(app, config)
    register_blueprints(app)
    register_error_handlers(app)
    register_request_hooks(app)
    trust_proxies(app, config)
    register_cli(app)
    return app


def _environment_config() -> Config:
    """The environment's settings; under a ``flask`` command an invalid one is a one-line error, not a traceback."""
    try:
        return load_config()
    except ConfigError as exc:
        if click.get_current_context(silent=True) is None:
            raise
        raise click.ClickException(f"invalid configuration: {exc}") from None


def configure_logging(config: Config) -> None:
    """Log at ``LOG_LEVEL`` in ``LOG_FORMAT``, each record with its request id; shadowed settings are reported once."""
    handler = stderr_handler(config.log_format)
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=config.log_level.upper(), handlers=[handler])
    logging.getLogger("statesman").setLevel(config.log_level.upper())
    for warning in config.warnings:
        logging.getLogger("statesman.config").warning(warning)
    if config.auth_disabled:
        logging.getLogger("statesman.auth").warning("authentication is DISABLED: every request acts as an admin")


def configure_flask(app: Flask, config: Config) -> None:
    """Flask and SQLAlchemy settings derived from ``Config``."""
    from app.drivers.sql import engine_options

    app.config.update(
        SQLALCHEMY_DATABASE_URI=config.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(config.database_url),
        TESTING=config.testing,
        JSON_SORT_KEYS=False,
    )
    if config.database_url.startswith("sqlite:///"):
        _prepare_sqlite_file(Path(config.database_url.removeprefix("sqlite:///")))


def _prepare_sqlite_file(path: Path) -> None:
    """Create the SQLite file readable only by the server (it holds token hashes and audit events)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def init_extensions(app: Flask) -> None:
    """SQLAlchemy, Flask-Migrate, and the per-process memory of organizations and grants the access step reads."""
    from app.auth import access_cache
    from app.repositories.migration_status import MIGRATIONS_DIR

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    access_cache.init_app(app)


def init_drivers(app: Flask, config: Config) -> None:
    """Build the storage, lock and encryption drivers once; an unknown or unusable one stops start-up."""
    verifier = JwtVerifier(config.jwt_issuer_url, config.jwt_audience) if config.jwt_issuer_url else None
    install_services(app, Services(config=config, drivers=Drivers.from_config(config), jwt=verifier))


def close_connections(app: Flask) -> None:
    """Close the session, the database pools and the drivers of ``app`` (their connections, clients and threads)."""
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
        drivers().close()


def reopen_after_fork(app: Flask) -> None:
    """Give a process forked from the one that built ``app`` (gunicorn's ``preload_app``) connections of its own.

    Connections, clients and the threads that renew their credentials cannot be shared by two processes, so the
    drivers are built again from the same configuration. The parent's pooled connections are dropped without being
    closed, as SQLAlchemy advises after a fork: closing them here would end the parent's sessions.
    """
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
        built = services()
    install_services(app, replace(built, drivers=Drivers.from_config(built.config)))


def init_sign_in(app: Flask, config: Config) -> None:
    """Sign-in through the identity provider (``OPENTACO_AUTH_ISSUER``), used by ``terraform login``."""
    from app.auth import oidc

    oidc.init_app(app, config)


def register_blueprints(app: Flask) -> None:
    """The APIs: health, metrics, the Terraform http backend, the management API (/internal/api and /v1), the TFC API,
    ``terraform login`` (/oauth), the id-token exchange (/v1/auth), its token keys (/oidc/jwks.json) and the agents'
    API (/api/agent/v1)."""
    from app import agent_api, http_backend, internal, oauth, tfc_api
    from app.oauth import exchange, keys
    from app.web import health, metrics

    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(exchange.bp)
    app.register_blueprint(keys.bp)
    http_backend.register(app)
    internal.register(app)
    tfc_api.register(app)
    agent_api.register(app)


def register_request_hooks(app: Flask) -> None:
    """Refuse text no database can hold (NUL) before any view runs; request ids for logs and audit events;
    metrics and the request log of every request."""
    from app.web import request_log
    from app.web.request_text import refuse_nul_characters

    request_log.init_app(app)  # first: its clock and its record cover requests the next hook refuses
    app.before_request(refuse_nul_characters)

    @app.before_request
    def assign_request_id() -> None:
        # A caller's id (nginx's $request_id, a CI job's) is kept when it is short and plain: it goes into logs.
        offered = _UNSAFE_REQUEST_ID.sub("", request.headers.get("X-Request-ID", ""))[:64]
        g.request_id = offered or uuid.uuid4().hex
        g.request_id_token = current_request_id.set(g.request_id)

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.teardown_request
    def forget_request_id(_error: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            current_request_id.reset(token)


def trust_proxies(app: Flask, config: Config) -> None:
    """Honour ``X-Forwarded-*`` from ``TRUSTED_PROXIES`` when ``OPENTACO_ALLOW_X_FORWARDED_FOR`` is on."""
    from app.web.proxies import TrustedProxies

    if config.allow_x_forwarded_for:
        app.wsgi_app = TrustedProxies(app.wsgi_app, config.trusted_proxies)  # type: ignore[method-assign]


_UNSAFE_REQUEST_ID = re.compile(r"[^A-Za-z0-9._:@/+=-]")


def register_cli(app: Flask) -> None:
    """Admin commands (``flask orgs``, ``flask users``, ``flask tokens``, ``flask workspaces``, ...)."""
    from app.cli.admin import register_admin_commands
    from app.cli.export import register_export_commands
    from app.cli.migrate_in import import_cli
    from app.cli.runs import runs_cli
    from app.cli.signing_keys import signing_keys_cli
    from app.cli.storage import storage_cli

    register_admin_commands(app)
    app.cli.add_command(signing_keys_cli)
    register_export_commands(app)
    app.cli.add_command(storage_cli)
    app.cli.add_command(import_cli)
    app.cli.add_command(runs_cli)
