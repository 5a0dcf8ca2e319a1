"""The per-app runtime: the frozen ``Config`` and the drivers built from it, reachable from repositories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

from app.drivers import Drivers
from config import Config

if TYPE_CHECKING:
    from app.auth.oidc_jwt import JwtVerifier

EXTENSION_KEY = "statesman"


@dataclass(frozen=True)
class Runtime:
    """What ``create_app`` built once: configuration and drivers."""

    config: Config
    drivers: Drivers
    jwt: JwtVerifier | None = None


def install(app: Flask, runtime: Runtime) -> None:
    """Attach the runtime to ``app``."""
    app.extensions[EXTENSION_KEY] = runtime


def runtime() -> Runtime:
    """The current app's runtime."""
    runtime_: Runtime = current_app.extensions[EXTENSION_KEY]
    return runtime_


def config() -> Config:
    """The current app's configuration."""
    return runtime().config


def drivers() -> Drivers:
    """The current app's drivers."""
    return runtime().drivers


def jwt_verifier() -> JwtVerifier | None:
    """The JWT verifier when ``AUTH_JWT_OIDC_ISSUER_URL`` is set."""
    return runtime().jwt
