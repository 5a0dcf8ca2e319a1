"""Workspaces: JSON:API shape, lookups by name and id, updates, deletion rules, listing with search and paging."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_token
from tests.tfc_api.conftest import Api, assert_error, state

REQUIRED_ATTRIBUTES = {
    "name",
    "execution-mode",
    "operations",
    "terraform-version",
    "locked",
    "permissions",
    "actions",
    "auto-apply",
    "working-directory",
    "tag-names",
    "resource-count",
    "created-at",
    "updated-at",
}
PERMISSIONS = {
    "can-lock",
    "can-unlock",
    "can-force-unlock",
    "can-update",
    "can-destroy",
    "can-queue-run",
    "can-read-state-versions",
    "can-read-settings",
}


def assert_workspace(data: dict[str, Any], name: str) -> None:
    assert data["type"] == "workspaces" and data["id"].startswith("ws-")
    attributes = data["attributes"]
    assert set(attributes) >= REQUIRED_ATTRIBUTES
    assert set(attributes["permissions"]) >= PERMISSIONS
    assert "vcs-repo" not in attributes
    assert attributes["name"] == name
    assert attributes["execution-mode"] == "local" and attributes["operations"] is False
    assert attributes["actions"] == {"is-destroyable": True}
    assert attributes["created-at"].endswith("Z")
    assert set(data["relationships"]) >= {"organization", "current-state-version", "current-run", "locked-by"}
    assert data["relationships"]["organization"]["data"] == {"id": "acme", "type": "organizations"}


def test_create_as_the_remote_backend_does(api: Api) -> None:
    assert_error(api.get("organizations/acme/workspaces/prod"), 404)
    data = api.create_workspace("prod", **{"terraform-version": "1.0.3"})
    assert_workspace(data, "prod")
    assert data["attributes"]["terraform-version"] == "1.0.3"
    assert data["attributes"]["permissions"]["can-lock"] is True
    assert data["relationships"]["current-state-version"]["data"] is None
    assert_error(api.get(f"workspaces/{data['id']}/current-state-version"), 404)


def test_create_ignores_unknown_attributes_and_refuses_bad_ones(api: Api) -> None:
    data = api.create_workspace("sdk", **{"vcs-repo": {}, "setting-overwrites": {}, "description": "x"})
    assert data["attributes"]["terraform-version"] == "latest"
    assert_error(api.post("organizations/acme/workspaces", {"data": {"attributes": {"name": "sdk"}}}), 409)
    assert_error(api.post("organizations/acme/workspaces", {"data": {"attributes": {"name": "no/slash"}}}), 400)
    assert_error(api.post("organizations/acme/workspaces", {"data": {"attributes": {}}}), 400, "name")
    remote = api.post(
        "organizations/acme/workspaces", {"data": {"attributes": {"name": "r", "execution-mode": "remote"}}}
    )
    assert_error(remote, 422, "execution-mode")
    assert remote.json["errors"][0]["source"] == {"pointer": "/data/attributes/execution-mode"}


def test_show_by_name_id_and_id_in_the_org_path(api: Api, workspace: dict[str, Any]) -> None:
    for path in (
        "organizations/acme/workspaces/prod",
        f"workspaces/{workspace['id']}",
        f"organizations/acme/workspaces/{workspace['id']}",
    ):
        response = api.get(path)
        assert response.status_code == 200, path
        assert_workspace(response.json["data"], "prod")
    assert api.get(f"/tfe/api/v2/workspaces/{workspace['id']}").json["data"]["id"] == workspace["id"]


def test_other_organizations_ids_are_not_found(
    app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any]
) -> None:
    mallory = Api(client, make_token(app, "other", "mallory"))
    theirs = mallory.create_workspace("prod", org="other")
    for path in (
        f"workspaces/{theirs['id']}",
        f"organizations/acme/workspaces/{theirs['id']}",
        f"workspaces/{theirs['id']}/current-state-version",
        "organizations/other/workspaces/prod",
    ):
        assert_error(api.get(path), 404)
    assert_error(api.post(f"workspaces/{theirs['id']}/actions/lock", {"reason": "x"}), 404)
    assert_error(mallory.get(f"workspaces/{workspace['id']}"), 404)


def test_update_settings_and_rename(api: Api, workspace: dict[str, Any]) -> None:
    response = api.patch(
        f"workspaces/{workspace['id']}",
        {
            "data": {
                "type": "workspaces",
                "attributes": {
                    "auto-apply": True,
                    "working-directory": "infra",
                    "terraform-version": "1.5.7",
                    "tag-names": ["app"],
                },
            }
        },
    )
    assert response.status_code == 200, response.json
    attributes = response.json["data"]["attributes"]
    assert (
        attributes["auto-apply"],
        attributes["working-directory"],
        attributes["terraform-version"],
        attributes["tag-names"],
    ) == (True, "infra", "1.5.7", ["app"])
    renamed = api.patch("organizations/acme/workspaces/prod", {"data": {"attributes": {"name": "production"}}})
    assert renamed.json["data"]["attributes"]["name"] == "production"
    assert api.get("organizations/acme/workspaces/production").json["data"]["id"] == workspace["id"]
    api.create_workspace("staging")
    assert_error(
        api.patch("organizations/acme/workspaces/staging", {"data": {"attributes": {"name": "production"}}}), 409
    )


def test_delete_refused_while_locked_then_allowed(api: Api, workspace: dict[str, Any]) -> None:
    api.lock(workspace["id"])
    assert_error(api.delete("organizations/acme/workspaces/prod"), 409, "locked")
    api.unlock(workspace["id"])
    response = api.delete(f"workspaces/{workspace['id']}")
    assert response.status_code == 204
    assert_error(api.get(f"workspaces/{workspace['id']}"), 404)


def test_safe_delete_refuses_workspaces_with_resources(api: Api, workspace: dict[str, Any]) -> None:
    api.lock(workspace["id"])
    assert api.push(workspace["id"], state(1, resources=2)).status_code == 201
    api.unlock(workspace["id"])
    assert api.get(f"workspaces/{workspace['id']}").json["data"]["attributes"]["resource-count"] == 2
    assert_error(api.post(f"workspaces/{workspace['id']}/actions/safe-delete"), 409, "2 resource")
    empty = api.create_workspace("empty")
    assert api.post("organizations/acme/workspaces/empty/actions/safe-delete").status_code == 204
    assert_error(api.get(f"workspaces/{empty['id']}"), 404)


def test_list_paging_meta_and_search(api: Api) -> None:
    for name in ("app-a", "app-b", "app-c", "db-a", "web"):
        api.create_workspace(name)
    page = api.get("organizations/acme/workspaces?page[size]=2&page[number]=2")
    assert [w["attributes"]["name"] for w in page.json["data"]] == ["app-c", "db-a"]
    assert page.json["meta"]["pagination"] == {
        "current-page": 2,
        "page-size": 2,
        "prev-page": 1,
        "next-page": 3,
        "total-pages": 3,
        "total-count": 5,
    }
    found = api.get("organizations/acme/workspaces?search[name]=app-&include=")
    assert [w["attributes"]["name"] for w in found.json["data"]] == ["app-a", "app-b", "app-c"]
    assert found.json["meta"]["pagination"]["next-page"] is None
    assert api.get("organizations/acme/workspaces?page[size]=500").json["meta"]["pagination"]["page-size"] == 100
    assert api.get("organizations/acme/workspaces?search[name]=zzz").json["data"] == []


def test_list_by_tags_and_project(api: Api) -> None:
    api.create_workspace("one", **{"tag-names": ["app", "prod"]})
    api.create_workspace("two", **{"tag-names": ["app"]})
    api.create_workspace("three", **{"tag-names": ["application"]})
    names = [w["attributes"]["name"] for w in api.get("organizations/acme/workspaces?search[tags]=app").json["data"]]
    assert names == ["one", "two"]
    both = api.get("organizations/acme/workspaces?search[tags]=app,prod").json["data"]
    assert [w["attributes"]["name"] for w in both] == ["one"]
    project = api.get("organizations/acme/projects").json["data"][0]["id"]
    assert len(api.get(f"organizations/acme/workspaces?filter[project][id]={project}").json["data"]) == 3
    assert api.get("organizations/acme/workspaces?filter[project][id]=prj-nope").json["data"] == []


def test_read_only_token_sees_but_cannot_change(app: Flask, client: FlaskClient, workspace: dict[str, Any]) -> None:
    reader = Api(client, make_token(app, subject="bob", scope="read-only"))
    data = reader.get(f"workspaces/{workspace['id']}").json["data"]
    assert data["attributes"]["permissions"]["can-lock"] is False
    assert data["attributes"]["permissions"]["can-read-state-versions"] is True
    assert_error(reader.post(f"workspaces/{workspace['id']}/actions/lock", {}), 403)
    assert_error(reader.delete(f"workspaces/{workspace['id']}"), 403)
    assert_error(reader.patch(f"workspaces/{workspace['id']}", {"data": {"attributes": {"auto-apply": True}}}), 403)


def test_an_id_the_caller_may_not_see_is_a_404_like_an_unknown_one(app, client, api, workspace) -> None:
    """A member whose roles allow nothing learns nothing from ids: existing and unknown ids answer alike."""
    nobody = Api(client, make_token(app, subject="nora", role=None))
    for path in (f"workspaces/{workspace['id']}", "workspaces/ws-0000000000000000"):
        assert_error(nobody.get(path), 404)
    assert_error(nobody.get(f"workspaces/{workspace['id']}/current-state-version"), 404)


def test_a_listing_reads_the_locks_of_its_page_at_once(app: Flask, api: Api, monkeypatch: Any) -> None:
    ids = {name: api.create_workspace(name)["id"] for name in ("a", "b", "c")}
    for name in ("a", "c"):
        assert api.post(f"workspaces/{ids[name]}/actions/lock", {"reason": f"hold {name}"}).status_code == 200
    with app.app_context():
        from app.extensions import drivers

        locks = drivers().locks

    def one_by_one(_key: str) -> None:
        raise AssertionError("a listing must not look up locks one workspace at a time")

    monkeypatch.setattr(locks, "get", one_by_one)
    listed = api.get("organizations/acme/workspaces").json["data"]
    shown = {w["attributes"]["name"]: (w["attributes"]["locked"], w["attributes"]["locked-reason"]) for w in listed}
    assert shown == {"a": (True, "hold a"), "b": (False, ""), "c": (True, "hold c")}
