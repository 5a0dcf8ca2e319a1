"""A server loads the client libraries of the drivers and integrations its configuration names, and no others.

boto3, hvac, redis, psycopg2 and Authlib's client (with requests) each add megabytes to every gunicorn worker; the
registries and the optional integrations import them only when chosen. Each case builds the app in a fresh Python
(``sys.modules`` of this test process holds everything the other tests loaded) and serves one request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_server import REPO_ROOT, free_port, server_environment

# What a configuration may make the server import: the top of each library (any submodule counts).
OPTIONAL = ("boto3", "botocore", "hvac", "redis", "psycopg2", "pymysql", "MySQLdb", "requests", "authlib.integrations")

_BUILD_AND_SERVE = """
import json, sys
from app import create_app
response = create_app().test_client().get("/healthz")
assert response.status_code == 200, response.status_code
watched = json.loads(sys.argv[1])
print(json.dumps(sorted(m for m in watched if any(n == m or n.startswith(m + ".") for n in sys.modules))))
"""

# Nothing listens on port 9 (discard): building these drivers must not need their service.
NOWHERE = "127.0.0.1:9"
CASES = {
    "default": ({}, set()),
    "s3 storage": (
        {
            "OPENTACO_STORAGE": "s3",
            "OPENTACO_S3_BUCKET": "states",
            "OPENTACO_S3_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://{NOWHERE}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        },
        {"boto3", "botocore"},
    ),
    "redis locks": ({"LOCK_BACKEND": "redis", "REDIS_URL": f"redis://{NOWHERE}/0"}, {"redis"}),
    "postgres metadata": ({"DATABASE_URL": f"postgresql+psycopg2://postgres@{NOWHERE}/taco"}, {"psycopg2"}),
    "mysql metadata": ({"DATABASE_URL": f"mysql+pymysql://root@{NOWHERE}/taco"}, {"pymysql"}),
    "sign-in": (
        {"OPENTACO_AUTH_ISSUER": f"http://{NOWHERE}", "OPENTACO_AUTH_CLIENT_ID": "statesman"},
        {"authlib.integrations", "requests"},
    ),
}


def optional_modules_loaded(data_dir: Path, settings: dict[str, str]) -> set[str]:
    """Which of ``OPTIONAL`` a fresh process has imported after building the app and serving ``/healthz``."""
    env = server_environment(data_dir, free_port(), 1, settings)
    result = subprocess.run(
        [sys.executable, "-c", _BUILD_AND_SERVE, json.dumps(OPTIONAL)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_app_imports_only_the_libraries_its_configuration_uses(case: str, tmp_path: Path) -> None:
    settings, expected = CASES[case]
    assert optional_modules_loaded(tmp_path, settings) == expected


@pytest.mark.parametrize("registry", ["storage", "locks", "kms"])
def test_every_registry_entry_names_a_factory_that_exists(registry: str) -> None:
    """Entries name their factory as text (so nothing is imported before it is chosen): a typo must fail here."""
    from app.drivers import kms, locks, storage

    entries = {"storage": storage.STORAGE_DRIVERS, "locks": locks.LOCK_DRIVERS, "kms": kms.KMS_DRIVERS}[registry]
    for name, build in entries.items():
        assert callable(build.factory()), name
