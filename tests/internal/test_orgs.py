"""Organizations: sync (idempotent, keyed by external id, derived URL names), create, list, show."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.factories import bearer, make_token
from tests.internal.conftest import Ui

ORG_KEYS = {"id", "name", "display_name", "external_org_id", "created_by", "created_at", "updated_at"}


def test_sync_creates_then_reports_existing_and_updates_the_display_name(ui: Ui) -> None:
    body = {"name": "acme", "display_name": "Acme", "external_org_id": "org_acme"}
    first = ui.post("/orgs/sync", body)
    assert first.status_code == 201
    assert first.json["status"] == "created"
    assert set(first.json["organization"]) == ORG_KEYS
    org = first.json["organization"]
    assert (org["name"], org["display_name"], org["external_org_id"], org["created_by"]) == (
        "acme",
        "Acme",
        "org_acme",
        "alice",
    )
    assert org["created_at"].endswith("Z")

    again = ui.post("/orgs/sync", dict(body, display_name="Acme Inc."))
    assert again.status_code == 200
    assert again.json["status"] == "existing"
    assert again.json["organization"]["id"] == org["id"]
    assert again.json["organization"]["name"] == "acme"
    assert again.json["organization"]["display_name"] == "Acme Inc."


def test_sync_makes_the_caller_admin_of_a_new_org(ui: Ui) -> None:
    ui.post("/orgs/sync", {"name": "acme", "display_name": "Acme", "external_org_id": "org_acme"})
    me = ui.in_org("org_acme").get("/users/alice")
    assert me.status_code == 200
    assert me.json["roles"] == ["admin"]
    assert me.json["email"] == "alice@example.com"


def test_sync_requires_every_field(ui: Ui) -> None:
    response = ui.post("/orgs/sync", {"name": "acme", "display_name": "Acme"})
    assert response.status_code == 400
    assert "external_org_id" in response.json["error"]


def test_display_names_become_unique_url_safe_names(ui: Ui) -> None:
    names = []
    for external in ("org_1", "org_2", "org_3"):
        response = ui.post("/orgs/sync", {"name": "Personal", "display_name": "Personal", "external_org_id": external})
        assert response.status_code == 201
        names.append(response.json["organization"]["name"])
        assert response.json["organization"]["display_name"] == "Personal"
    assert names == ["Personal", "Personal-2", "Personal-3"]
    odd = ui.post("/orgs/sync", {"name": "My Org! (EU)", "display_name": "My Org! (EU)", "external_org_id": "o4"})
    assert odd.json["organization"]["name"] == "my-org-eu"
    empty = ui.post("/orgs/sync", {"name": "***", "display_name": "***", "external_org_id": "org_5"})
    assert empty.json["organization"]["name"] == "org"


def test_a_name_equal_to_another_orgs_external_id_is_not_reused(ui: Ui) -> None:
    ui.post("/orgs/sync", {"name": "acme", "display_name": "Acme", "external_org_id": "org_acme"})
    response = ui.post("/orgs/sync", {"name": "org_acme", "display_name": "x", "external_org_id": "org_other"})
    assert response.json["organization"]["name"] == "org_acme-2"


def test_create_with_an_empty_org_header_makes_the_creator_admin(ui: Ui) -> None:
    response = ui.post("/orgs", {"name": "Personal", "display_name": "Personal", "external_org_id": "org_p"})
    assert response.status_code == 201
    assert set(response.json) == ORG_KEYS
    assert response.json["created_by"] == "alice"
    roles = ui.in_org("org_p").get("/rbac/users").json["users"]
    assert [(u["subject"], u["roles"]) for u in roles] == [("alice", ["admin"])]


def test_create_with_an_existing_external_id_is_409_with_json(ui: Ui) -> None:
    body = {"name": "Personal", "display_name": "Personal", "external_org_id": "org_p"}
    created = ui.post("/orgs", body)
    again = ui.as_user("bob").post("/orgs", body)
    assert again.status_code == 409
    assert again.json["organization"]["id"] == created.json["id"]
    assert "already exists" in again.json["error"]


def test_create_without_external_id_derives_a_free_name(ui: Ui) -> None:
    first = ui.post("/orgs", {"name": "team", "display_name": "Team"})
    second = ui.post("/orgs", {"name": "team", "display_name": "Team"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json["name"], second.json["name"]) == ("team", "team-2")
    assert second.json["external_org_id"] is None


def test_list_and_show_only_what_the_caller_belongs_to(ui: Ui) -> None:
    ui.post("/orgs/sync", {"name": "acme", "display_name": "Acme", "external_org_id": "org_acme"})
    ui.as_user("bob").post("/orgs/sync", {"name": "bobco", "display_name": "Bob", "external_org_id": "org_bob"})
    listed = ui.get("/orgs")
    assert listed.status_code == 200
    assert [o["name"] for o in listed.json["organizations"]] == ["acme"]
    for ref in ("acme", "org_acme", listed.json["organizations"][0]["id"]):
        shown = ui.get(f"/orgs/{ref}")
        assert shown.status_code == 200
        assert set(shown.json) == ORG_KEYS
    hidden = ui.get("/orgs/bobco")
    unknown = ui.get("/orgs/nothing-here")
    assert (hidden.status_code, unknown.status_code) == (404, 404)
    assert hidden.json["error"].replace("bobco", "X") == unknown.json["error"].replace("nothing-here", "X")


def test_tokens_cannot_create_organizations_through_v1(app, client: FlaskClient) -> None:
    token = make_token(app)
    response = client.post("/v1/orgs", json={"name": "x", "display_name": "x"}, headers=bearer(token))
    assert response.status_code == 403
    response = client.post(
        "/v1/orgs/sync", json={"name": "x", "display_name": "x", "external_org_id": "x"}, headers=bearer(token)
    )
    assert response.status_code == 403
    listed = client.get("/v1/orgs", headers=bearer(token))
    assert [o["name"] for o in listed.json["organizations"]] == ["acme"]
