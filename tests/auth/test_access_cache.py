"""The per-process memory of organizations and grants (``app.auth.access_cache``): it saves the reads, and it never
serves a removed role, membership or name past its bound: at once on the process that made the change, within
``ACCESS_CACHE_SECONDS`` on every other."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth.access_cache import AccessCache
from app.extensions import db
from app.models import Membership
from app.repositories import orgs, rbac, users
from tests.factories import basic, make_token

STATE = json.dumps({"version": 4, "serial": 1, "lineage": "cache", "outputs": {}, "resources": []}).encode()
PERMISSION_TABLES = ("organizations", "memberships", "role_assignments", "role_permissions", "permissions")


def reader(app: Flask, subject: str = "rita") -> str:
    """A token of a member whose only role reads every workspace of acme."""
    token = make_token(app, subject=subject, role=None)
    with app.app_context():
        org = orgs.require_org("acme")
        role = rbac.create_role(org, f"{subject}-role", "test")
        permission = rbac.create_permission(
            org, f"{subject}-read", [{"actions": ["unit.read"], "resources": ["*"], "effect": "allow"}], "test"
        )
        rbac.attach_permission(org, role, permission, "test")
        user = users.get_user_by_subject(subject)
        assert user is not None
        rbac.assign_role(org, user, role, "test")
    return token


@pytest.fixture
def seeded(app: Flask, client: FlaskClient) -> str:
    admin = make_token(app)
    assert client.post("/state/acme/app", data=STATE, headers=basic(admin)).status_code == 200
    return reader(app)


def revoke_roles(app: Flask, subject: str) -> None:
    with app.app_context():
        org = orgs.require_org("acme")
        user = users.get_user_by_subject(subject)
        assert user is not None
        rbac.revoke_role(org, user, rbac.require_role(org, f"{subject}-role"), "test")


def remove_membership(app: Flask, subject: str) -> None:
    """Delete the user's memberships with one bulk statement (no unit of work involved)."""
    with app.app_context():
        user = users.get_user_by_subject(subject)
        assert user is not None
        db.session.execute(db.delete(Membership).where(Membership.user_id == user.id))
        db.session.commit()


def test_a_repeated_request_reads_no_organization_membership_or_grants(
    app: Flask, client: FlaskClient, seeded: str, sql_statements: list[str]
) -> None:
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 200
    first = permission_reads(sql_statements)
    sql_statements.clear()
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 200
    assert len(first) == 3, first  # the organization, the membership, the grants: else this test proves nothing
    assert permission_reads(sql_statements) == []


def permission_reads(statements: list[str]) -> list[str]:
    """Statements reading from a permission table (the workspace query's join of its organization is not one)."""
    return [s for s in statements if any(f"FROM {table}" in s for table in PERMISSION_TABLES)]


@pytest.mark.parametrize(
    ("change", "refused"),
    [(revoke_roles, 403), (remove_membership, 404)],
    ids=["a revoked role", "a membership removed by a bulk delete"],
)
def test_a_lost_grant_is_refused_at_once_by_the_process_that_made_the_change(
    app: Flask, client: FlaskClient, seeded: str, change: Callable[[Flask, str], None], refused: int
) -> None:
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 200
    change(app, "rita")
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == refused


def test_a_renamed_organization_stops_answering_to_its_old_name_at_once(
    app: Flask, client: FlaskClient, seeded: str
) -> None:
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 200
    with app.app_context():
        orgs.rename_org(orgs.require_org("acme"), "acme-renamed", "test")
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 404
    assert client.get("/state/acme-renamed/app", headers=basic(seeded)).status_code == 200


def test_a_rolled_back_change_forgets_nothing(
    app: Flask, client: FlaskClient, seeded: str, sql_statements: list[str]
) -> None:
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 200
    with app.app_context():
        orgs.require_org("acme").display_name = "never committed"
        db.session.flush()
        db.session.rollback()
    sql_statements.clear()
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 200
    assert permission_reads(sql_statements) == []


def test_another_process_change_applies_within_the_bound(
    app: Flask, make_app: object, client: FlaskClient, seeded: str
) -> None:
    """Another worker (here: another app on the same database) revokes the role: this process learns it only when
    its memory of the grants expires."""
    bound = 1.0
    other = make_app()  # type: ignore[operator]
    app.extensions["statesman_access_cache"] = AccessCache(ttl_seconds=bound)
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 200
    revoke_roles(other, "rita")
    remembered = client.get("/state/acme/app", headers=basic(seeded)).status_code
    time.sleep(bound + 0.1)
    assert remembered == 200  # served from memory inside the bound: the documented staleness, and no more
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 403


def test_writes_and_locks_that_touch_no_permission_row_forget_nothing(
    app: Flask, client: FlaskClient, seeded: str, sql_statements: list[str]
) -> None:
    """The remembered organization joins each session clean: committing a state write or a lock must not look like
    a change to it (which would empty the memory on every write)."""
    admin = make_token(app)
    assert client.get("/state/acme/app", headers=basic(admin)).status_code == 200
    next_state = json.dumps({"version": 4, "serial": 2, "lineage": "cache", "outputs": {}, "resources": []})
    assert client.post("/state/acme/app", data=next_state, headers=basic(admin)).status_code == 200
    lock = json.dumps(
        {"ID": "l1", "Operation": "apply", "Info": "", "Who": "w", "Version": "1", "Created": "", "Path": ""}
    )
    assert client.open("/state/acme/app", method="LOCK", data=lock, headers=basic(admin)).status_code == 200
    assert client.open("/state/acme/app", method="UNLOCK", data=lock, headers=basic(admin)).status_code == 200
    sql_statements.clear()
    assert client.get("/state/acme/app", headers=basic(admin)).status_code == 200
    assert permission_reads(sql_statements) == []
    assert not [s for s in sql_statements if s.startswith("UPDATE organizations")]


def test_a_new_member_is_let_in_at_once_even_by_another_process(
    app: Flask, make_app: object, client: FlaskClient, seeded: str
) -> None:
    """Only memberships are remembered, never their absence: a user refused a moment ago as a non-member gets in as
    soon as another worker adds them back."""
    other = make_app()  # type: ignore[operator]
    remove_membership(app, "rita")
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 404
    with other.app_context():
        user = users.get_user_by_subject("rita")
        assert user is not None
        orgs.add_member(orgs.require_org("acme"), user, "test")
    assert client.get("/state/acme/app", headers=basic(seeded)).status_code == 200
