"""Self-service calls of the management API cannot cross organizations, change emails or reveal other organizations.

The token door (/v1) has nobody vouching for the caller: joining an organization, even one's own, needs
``rbac.manage`` there, and a token acts only in its own organization. The webhook door (/internal/api) is the web UI,
trusted to say who the person is; even there, ``X-Email`` never rewrites a stored email.
"""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import bearer
from tests.internal.conftest import Ui, join, state, token_for


def v1(client: FlaskClient, token: str, method: str, path: str, body: object = None) -> TestResponse:
    data = json.dumps(body).encode() if body is not None else None
    return client.open(
        f"/v1{path}", method=method, data=data, headers={**bearer(token), "Content-Type": "application/json"}
    )


@pytest.fixture
def globex(ui: Ui) -> Ui:
    """A second organization, globex, whose only member is carol; one state in unit ``secrets``."""
    carol = ui.as_user("carol")
    assert (
        carol.post("/orgs/sync", {"name": "globex", "display_name": "G", "external_org_id": "org_globex"}).status_code
        == 201
    )
    carol = carol.in_org("org_globex")
    assert carol.post("/units", {"name": "secrets"}).status_code == 201
    assert carol.post("/units/secrets/upload", data=state(1)).status_code == 200
    return carol


def stored_email(app: Flask, subject: str) -> str | None:
    from app.repositories.users import get_user_by_subject

    with app.app_context():
        user = get_user_by_subject(subject)
        assert user is not None
        return user.email


def test_no_token_can_join_another_organization(app: Flask, client: FlaskClient, acme: Ui, globex: Ui) -> None:
    join(acme, "bob")
    attempts = {
        "bob": token_for(app, "acme", "bob"),
        "bob-outputs": token_for(app, "acme", "bob", scope="outputs-only"),
        "alice-admin": token_for(app, "acme", "alice"),
    }
    for name, token in attempts.items():
        subject = "alice" if name == "alice-admin" else "bob"
        response = v1(client, token, "POST", "/users?org=globex", {"subject": subject})
        assert response.status_code == 404, (name, response.json)
        assert "globex" not in json.dumps(response.json).replace("'globex'", "")  # nothing about globex but its name
    org_token = token_for(app, "acme", None)
    me = v1(client, org_token, "GET", "/me").json["subject"]
    assert v1(client, org_token, "POST", "/users?org=globex", {"subject": me}).status_code == 404
    # nothing joined: bob and alice still cannot see globex through any door
    for user in ("bob", "alice"):
        assert acme.as_user(user).in_org("org_globex").get("/units").status_code == 404
    assert v1(client, attempts["bob"], "GET", "/units/secrets/download?org=globex").status_code == 404
    api = {**bearer(attempts["bob"]), "Content-Type": "application/vnd.api+json"}
    assert client.get("/api/v2/organizations/globex/workspaces/secrets", headers=api).status_code == 404
    with app.app_context():
        from app.repositories import orgs, users

        assert users.get_user_by_subject(me) is None  # the org token made no "token:at-..." user
        assert [u.subject for u in orgs.list_members(orgs.require_org("globex"))] == ["carol"]


def test_joining_through_the_token_door_needs_rbac_manage(app: Flask, client: FlaskClient, acme: Ui) -> None:
    join(acme, "bob")
    bob, admin = token_for(app, "acme", "bob"), token_for(app, "acme", "alice")
    assert v1(client, bob, "POST", "/users", {"subject": "bob"}).status_code == 403  # even re-joining oneself
    assert v1(client, bob, "POST", "/users", {"subject": "mallory"}).status_code == 403
    assert v1(client, token_for(app, "acme", None), "POST", "/users", {"subject": "mallory"}).status_code == 403
    assert (
        v1(client, token_for(app, "acme", "alice", scope="read-only"), "POST", "/users", {"subject": "m"}).status_code
        == 403
    )
    created = v1(client, admin, "POST", "/users", {"subject": "dave", "email": "dave@acme.test"})
    assert created.status_code == 201, created.json
    assert created.json["email"] == "dave@acme.test" and created.json["roles"] == ["default"]


def test_self_registration_stays_on_the_webhook_door(acme: Ui) -> None:
    erin = acme.as_user("erin")
    response = erin.post("/users", {"subject": "erin"})
    assert response.status_code == 201
    assert response.json["roles"] == ["default"]
    assert erin.post("/users", {"subject": "erin", "role_id": "admin"}).status_code == 403


def test_a_member_cannot_claim_another_email(app: Flask, client: FlaskClient, acme: Ui) -> None:
    join(acme, "bob")
    bob = token_for(app, "acme", "bob")
    response = v1(client, bob, "POST", "/users", {"subject": "bob", "email": "new-lead@acme.test"})
    assert response.status_code == 403
    assert stored_email(app, "bob") == "bob@example.com"
    # X-Email on any webhook call never overwrites the stored email either
    assert acme.as_user("bob", email="new-lead@acme.test").get("/me").json["email"] == "bob@example.com"
    assert acme.as_user("bob", email="new-lead@acme.test").get("/units").status_code == 200
    assert stored_email(app, "bob") == "bob@example.com"
    # so an admin assigning a role by the lead's email promotes nobody
    promoted = acme.post("/rbac/assign", {"email": "new-lead@acme.test", "role_id": "admin"})
    assert promoted.status_code == 404
    assert acme.get("/users/bob").json["roles"] == ["default"]


def test_emails_change_through_the_identity_provider_or_an_admin(app: Flask, client: FlaskClient, acme: Ui) -> None:
    join(acme, "bob")
    # the UI's sync (POST /internal/api/users) carries the identity provider's email
    assert acme.post("/users", {"subject": "bob", "email": "bob@new.test"}).status_code == 200
    assert stored_email(app, "bob") == "bob@new.test"
    # an admin of the only organization bob belongs to may set it through the token door (audited)
    admin = token_for(app, "acme", "alice")
    assert v1(client, admin, "POST", "/users", {"subject": "bob", "email": "bob@acme.test"}).status_code == 200
    assert stored_email(app, "bob") == "bob@acme.test"
    events = [e for e in acme.get("/audit").json["events"] if e["action"] == "user.email"]
    assert len(events) == 2


def test_an_admin_cannot_change_the_email_of_another_organizations_member(
    app: Flask, client: FlaskClient, acme: Ui, globex: Ui
) -> None:
    assert globex.post("/users", {"subject": "bob", "email": "bob@globex.test"}).status_code == 201
    join(acme, "bob")  # bob is in both organizations now
    admin = token_for(app, "acme", "alice")
    response = v1(client, admin, "POST", "/users", {"subject": "bob", "email": "carol@globex.test"})
    assert response.status_code == 409
    assert "other organizations" in response.json["message"]
    assert stored_email(app, "bob") == "bob@example.com"  # as the UI last synced it


def test_assignment_by_an_ambiguous_email_is_refused(acme: Ui) -> None:
    for subject in ("bob", "bobby"):
        assert (
            acme.as_user(subject).post("/users", {"subject": subject, "email": "shared@acme.test"}).status_code == 201
        )
    response = acme.post("/rbac/assign", {"email": "shared@acme.test", "role_id": "admin"})
    assert response.status_code == 409
    assert "by subject" in response.json["message"]
    assert acme.post("/rbac/assign", {"subject": "bob", "role_id": "admin"}).status_code == 200


def test_other_organizations_users_are_not_found(app: Flask, client: FlaskClient, acme: Ui, globex: Ui) -> None:
    join(acme, "bob")
    bob = token_for(app, "acme", "bob")
    for path in ("/users/bob?org=globex", "/users/carol?org=globex", "/users/bob?org=no-such-org", "/me?org=globex"):
        response = v1(client, bob, "GET", path)
        assert response.status_code == 404, path
    unknown, existing = (
        v1(client, bob, "GET", "/users/bob?org=no-such-org"),
        v1(client, bob, "GET", "/users/bob?org=globex"),
    )
    assert unknown.json["message"].replace("no-such-org", "X") == existing.json["message"].replace("globex", "X")
    assert v1(client, bob, "GET", "/users/bob").status_code == 200
