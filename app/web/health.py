"""Liveness and readiness: ``/health`` and ``/healthz`` (process alive), ``/readyz`` (every backend reachable)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from app.core.errors import BackendUnavailable
from app.extensions import config, db, drivers
from app.repositories.migration_status import schema_status

bp = Blueprint("health", __name__)


@bp.route("/health")
@bp.route("/healthz")
def healthz() -> Response:
    """200 while the process serves requests; warns when authentication is disabled."""
    body: dict[str, object] = {"status": "ok"}
    if config().auth_disabled:
        body["warning"] = "authentication is disabled (development mode): every request acts as an admin"
    return jsonify(body)


@bp.route("/readyz")
def readyz() -> Response:
    """200 when the database, storage, lock backend and KMS answer; 503 naming each failing part."""
    checks = {"database": _check_database()}
    active = drivers()
    for part, driver in (("storage", active.storage), ("locks", active.locks), ("kms", active.kms)):
        checks[part] = _check_driver(driver)
    ready = all(result["status"] == "ok" for result in checks.values())
    response = jsonify(status="ready" if ready else "unavailable", checks=checks)
    response.status_code = 200 if ready else 503
    return response


def _check_database() -> dict[str, str]:
    try:
        status = schema_status(db.engine)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        return {"status": "error", "backend": db.engine.dialect.name, "error": type(cause).__name__}
    if not status.current:
        return {"status": "error", "backend": db.engine.dialect.name, "error": status.message}
    return {"status": "ok", "backend": db.engine.dialect.name}


def _check_driver(driver: object) -> dict[str, str]:
    name = getattr(driver, "name", type(driver).__name__)
    try:
        driver.check()  # type: ignore[attr-defined]
    except BackendUnavailable as exc:
        return {"status": "error", "backend": name, "error": exc.message}
    return {"status": "ok", "backend": name}
