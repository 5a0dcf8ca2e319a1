"""A state read Terraform repeats costs one query: the workspace with its current version (the organization and the
caller's grants are remembered, ``app.auth.access_cache``), and it always returns the newest state."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.auth.test_access_cache import reader
from tests.factories import basic, make_token

STATE = json.dumps({"version": 4, "serial": 1, "lineage": "reads", "outputs": {}, "resources": []})


@pytest.fixture
def seeded(app: Flask, client: FlaskClient) -> str:
    """A reader's token for acme/app, which has a state."""
    assert client.post("/state/acme/app", data=STATE, headers=basic(make_token(app))).status_code == 200
    return reader(app)


def test_a_repeated_state_read_is_one_query(
    app: Flask, client: FlaskClient, seeded: str, sql_statements: list[str]
) -> None:
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 200
    sql_statements.clear()
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 200
    assert len(sql_statements) == 1, sql_statements
    assert "JOIN state_versions" in sql_statements[0]


def test_a_read_after_a_write_returns_the_new_state(app: Flask, client: FlaskClient, seeded: str) -> None:
    admin = make_token(app)
    for serial in (2, 3):
        body = json.dumps({"version": 4, "serial": serial, "lineage": "reads", "outputs": {}, "resources": []})
        assert client.post("/state/acme/app", data=body, headers=basic(admin)).status_code == 200
        read = client.get("/state/acme/app", headers=basic(seeded))
        assert read.status_code == 200 and read.json["serial"] == serial
