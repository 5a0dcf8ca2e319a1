"""Liveness (``/health``, ``/healthz``) and readiness (``/readyz``) without credentials."""

from __future__ import annotations

import pytest

from app import create_app
from app.extensions import db, drivers
from tests.conftest import base_config


@pytest.mark.parametrize("path", ["/health", "/healthz"])
def test_liveness(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("path", ["/health", "/healthz"])
def test_liveness_warns_when_auth_is_disabled(make_app, path):
    response = make_app(auth_disabled=True).test_client().get(path)
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert "authentication is disabled" in response.json["warning"]


def test_readyz_all_ok(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "storage", "locks", "kms"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert body["checks"]["storage"]["backend"] == "fs"
    assert body["checks"]["locks"]["backend"] == "local"
    assert body["checks"]["kms"]["backend"] == "local"
    with app.app_context():
        assert body["checks"]["database"]["backend"] == db.engine.dialect.name


def test_readyz_names_unusable_storage(make_app, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    response = make_app(storage_fs_dir=blocker).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unavailable"
    assert body["checks"]["storage"]["status"] == "error"
    assert body["checks"]["storage"]["backend"] == "fs"
    assert body["checks"]["storage"]["error"]
    for part in ("database", "locks", "kms"):
        assert body["checks"][part]["status"] == "ok", part


def test_readyz_names_storage_under_a_file(make_app, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    response = make_app(storage_fs_dir=blocker / "states").test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["storage"]["status"] == "error"


def test_readyz_names_a_database_without_schema(tmp_path):
    application = create_app(base_config(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}"))
    try:
        response = application.test_client().get("/readyz")
        assert response.status_code == 503
        check = response.json["checks"]["database"]
        assert check["status"] == "error"
        assert "flask db upgrade" in check["error"]
        assert response.json["checks"]["storage"]["status"] == "ok"
        # Liveness is not readiness: the process is still alive.
        assert application.test_client().get("/healthz").status_code == 200
    finally:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
            drivers().close()


def test_readyz_names_an_unreachable_database(tmp_path):
    # Nothing listens on port 1: the metadata database (and the local locks, which live in it) are down.
    url = "postgresql+psycopg2://postgres@127.0.0.1:1/statesman?connect_timeout=2"
    application = create_app(base_config(tmp_path, url))
    try:
        client = application.test_client()
        response = client.get("/readyz")
        assert response.status_code == 503
        checks = response.json["checks"]
        assert checks["database"]["status"] == "error"
        assert checks["database"]["backend"] == "postgresql"
        assert checks["locks"]["status"] == "error"
        assert checks["storage"]["status"] == "ok"
        assert checks["kms"]["status"] == "ok"
        assert client.get("/healthz").status_code == 200
    finally:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
            drivers().close()
