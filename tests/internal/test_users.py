"""Users and membership, /me and /health."""

from __future__ import annotations

from tests.internal.conftest import Ui

USER_KEYS = {"subject", "email", "created_at", "updated_at", "roles", "role_ids"}


def test_self_registration_is_idempotent_and_gives_the_default_role(acme: Ui) -> None:
    bob = acme.as_user("bob")
    first = bob.post("/users", {"subject": "bob", "email": "bob@example.com"})
    assert first.status_code == 201
    assert first.json["subject"] == "bob"
    assert first.json["email"] == "bob@example.com"
    assert first.json["status"] == "created"
    assert first.json["roles"] == ["default"]
    assert first.json["created_at"].endswith("Z")
    again = bob.post("/users", {"subject": "bob", "email": "bob@example.com"})
    assert again.status_code == 200
    assert again.json["status"] == "existing"
    assert again.json["roles"] == ["default"]


def test_show_user_returns_email_and_roles(acme: Ui) -> None:
    acme.as_user("bob").post("/users", {"subject": "bob", "email": "bob@example.com"})
    shown = acme.get("/users/bob")
    assert shown.status_code == 200
    assert set(shown.json) == USER_KEYS
    assert shown.json["email"] == "bob@example.com"
    assert shown.json["roles"] == ["default"]
    # The UI looks up emails with an empty X-Email: that must not erase the stored one.
    lookup = acme.as_user("bob", email="").get("/users/bob")
    assert lookup.json["email"] == "bob@example.com"
    assert acme.get("/users/nobody").status_code == 404


def test_list_users(acme: Ui) -> None:
    acme.as_user("bob").post("/users", {"subject": "bob", "email": "bob@example.com"})
    listed = acme.get("/users")
    assert listed.status_code == 200
    assert [(u["subject"], u["roles"]) for u in listed.json["users"]] == [("alice", ["admin"]), ("bob", ["default"])]
    assert listed.json["count"] == 2


def test_adding_someone_else_or_a_role_needs_rbac_manage(acme: Ui) -> None:
    bob = acme.as_user("bob")
    bob.post("/users", {"subject": "bob", "email": "bob@example.com"})
    refused = bob.post("/users", {"subject": "carol", "email": "carol@example.com"})
    assert refused.status_code == 403
    escalate = bob.post("/users", {"subject": "bob", "email": "bob@example.com", "role_id": "admin"})
    assert escalate.status_code == 403
    added = acme.post("/users", {"subject": "carol", "email": "carol@example.com", "role_id": "admin"})
    assert added.status_code == 201
    assert added.json["role_id"] == "admin"
    assert added.json["roles"] == ["admin"]


def test_unknown_role_is_404(acme: Ui) -> None:
    response = acme.post("/users", {"subject": "dave", "email": "d@example.com", "role_id": "nope"})
    assert response.status_code == 404


def test_users_needs_an_org(ui: Ui) -> None:
    response = ui.post("/users", {"subject": "alice", "email": "alice@example.com"})
    assert response.status_code == 400
    assert "X-Org-ID" in response.json["error"]


def test_me(acme: Ui, ui: Ui) -> None:
    response = acme.get("/me")
    assert response.status_code == 200
    assert response.json["user_id"] == "alice"
    assert response.json["email"] == "alice@example.com"
    assert response.json["organization"]["name"] == "acme"
    assert response.json["org_id"] == response.json["organization"]["id"]
    assert response.json["roles"] == ["admin"]
    without_org = ui.get("/me")
    assert without_org.status_code == 200
    assert without_org.json["org_id"] is None
