"""The per-app objects: unbound Flask extensions, and the services ``create_app`` built (configuration, drivers).

``services()`` (and its shortcuts ``config()``, ``drivers()``, ``jwt_verifier()``) is the one documented lookup of
what the current app was built with; repositories reach drivers only through it, never through ``flask.g``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

from config import Config

if TYPE_CHECKING:
    from app.auth.oidc_jwt import JwtVerifier
    from app.drivers import Drivers

# Deterministic constraint names keep Alembic migrations identical on SQLite, PostgreSQL and MySQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()

SERVICES_KEY = "statesman"


@dataclass(frozen=True)
class Services:
    """What ``create_app`` built once: configuration, drivers, the JWT verifier."""

    config: Config
    drivers: Drivers
    jwt: JwtVerifier | None = None


def install_services(app: Flask, built: Services) -> None:
    """Attach what ``create_app`` built to ``app``."""
    app.extensions[SERVICES_KEY] = built


def services() -> Services:
    """The current app's services."""
    found: Services = current_app.extensions[SERVICES_KEY]
    return found


def config() -> Config:
    """The current app's configuration."""
    return services().config


def drivers() -> Drivers:
    """The current app's drivers."""
    return services().drivers


def jwt_verifier() -> JwtVerifier | None:
    """The JWT verifier when ``AUTH_JWT_OIDC_ISSUER_URL`` is set."""
    return services().jwt
