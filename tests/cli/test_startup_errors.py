"""Start-up against a database, bucket or Redis that is not there: one line naming it (never a password) and what to
do, a non-zero exit, no traceback; for ``statesman`` and, for the database, ``flask db upgrade``. Real services."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e.backends import MotoS3
from tests.e2e.launcher import user_environment
from tests.live_server import free_port
from tests.services import MYSQL_URL, POSTGRES_URL, require_service

PASSWORD = "sekret-pw-4711"
LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def run(command: list[str], cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = user_environment(
        KMS_KEY=base64.b64encode(os.urandom(32)).decode(), OPENTACO_SECRET_KEY="startup", FLASK_APP="app", **settings
    )
    return subprocess.run(
        [sys.executable, *command], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def statesman(cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return run(["-m", "app.cli.server", "-port", str(free_port())], cwd, **settings)


def db_upgrade(cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return run(["-m", "flask", "db", "upgrade"], cwd, **settings)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The error, which must be a single line of stderr besides log records (timestamped), after a non-zero exit."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not LOG_RECORD.match(line)]
    assert len(lines) == 1, result.stderr
    return lines[0]


def missing_database_url(server: str, **changes: str) -> str:
    url = sa.make_url(server).set(database=f"statesman_missing_{uuid.uuid4().hex[:8]}", **changes)
    return url.render_as_string(hide_password=False)


@pytest.mark.parametrize("command", [statesman, db_upgrade], ids=["statesman", "flask-db-upgrade"])
def test_missing_postgres_database(tmp_path: Path, command) -> None:
    require_service("postgres")
    # A password the local server (trust authentication) ignores, to show it is never printed.
    url = missing_database_url(POSTGRES_URL, password=PASSWORD)
    name = sa.make_url(url).database
    line = one_line(command(tmp_path, DATABASE_URL=url))
    assert (
        f"database {name} does not exist on 127.0.0.1:5432: create it (createdb {name}) and run flask db upgrade"
        in line
    )


@pytest.mark.parametrize("command", [statesman, db_upgrade], ids=["statesman", "flask-db-upgrade"])
def test_missing_mysql_database(tmp_path: Path, command) -> None:
    require_service("mysql")
    server = sa.make_url(MYSQL_URL)
    name = f"statesman_missing_{uuid.uuid4().hex[:8]}"
    settings = {
        "OPENTACO_QUERY_BACKEND": "mysql",
        "OPENTACO_MYSQL_HOST": server.host or "127.0.0.1",
        "OPENTACO_MYSQL_PORT": str(server.port or 3306),
        "OPENTACO_MYSQL_USER": server.username or "root",
        "OPENTACO_MYSQL_DBNAME": name,
    }
    if server.password:
        settings["OPENTACO_MYSQL_PASSWORD"] = server.password
    line = one_line(command(tmp_path, **settings))
    assert f"database {name} does not exist on {server.host}:{server.port or 3306}: create it" in line
    assert "flask db upgrade" in line


def test_unreachable_postgres_server(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql+psycopg2://statesman:{PASSWORD}@127.0.0.1:{port}/statesman"
    line = one_line(statesman(tmp_path, DATABASE_URL=url))
    assert f"cannot connect to the postgresql server at 127.0.0.1:{port} (database statesman): start it" in line


@pytest.fixture
def migrated_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "metadata.db"
    result = db_upgrade(tmp_path, OPENTACO_SQLITE_DB_PATH=str(path))
    assert result.returncode == 0, result.stderr
    return str(path)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    server = MotoS3()
    yield server
    server.stop()


def test_missing_s3_bucket(tmp_path: Path, migrated_sqlite: str, moto: MotoS3) -> None:
    settings = {
        **moto.server_env(),
        "OPENTACO_S3_BUCKET": "statesman-no-such-bucket",
        "OPENTACO_SQLITE_DB_PATH": migrated_sqlite,
    }
    line = one_line(statesman(tmp_path, **settings))
    assert f"bucket statesman-no-such-bucket does not exist at {moto.endpoint}: create it" in line
    assert moto.server_env()["AWS_SECRET_ACCESS_KEY"] not in line


def test_unreachable_redis(tmp_path: Path, migrated_sqlite: str) -> None:
    port = free_port()  # nobody listens there
    settings = {
        "LOCK_BACKEND": "redis",
        "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
        "OPENTACO_SQLITE_DB_PATH": migrated_sqlite,
    }
    line = one_line(statesman(tmp_path, **settings))
    assert f"cannot connect to Redis at 127.0.0.1:{port}" in line and "start it" in line


def test_an_invalid_setting_is_one_line_for_flask_commands(tmp_path: Path) -> None:
    """A ``flask`` admin command with a setting the server refuses says which and why, without a traceback."""
    result = run(["-m", "flask", "orgs", "list"], tmp_path, STATESMAN_ENV="production", LOCK_BACKEND="carrier-pigeon")
    line = one_line(result)
    assert line.startswith("Error: invalid configuration:") and "LOCK_BACKEND" in line, line
