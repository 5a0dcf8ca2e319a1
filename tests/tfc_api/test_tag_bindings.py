"""Tags through both TFE views (plain tags and key/value tag bindings) as go-tfe and the cloud block send them."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_token
from tests.tfc_api.conftest import Api, assert_error


def bindings_of(api: Api, workspace_id: str, kind: str = "tag-bindings") -> dict[str, str]:
    response = api.get(f"workspaces/{workspace_id}/{kind}")
    assert response.status_code == 200, response.json
    assert all(item["type"] == kind and item["id"].startswith("tb-") for item in response.json["data"])
    return {item["attributes"]["key"]: item["attributes"]["value"] for item in response.json["data"]}


def patch_bindings(api: Api, workspace_id: str, bindings: dict[str, str]) -> Any:
    data = [{"type": "tag-bindings", "attributes": {"key": k, "value": v}} for k, v in bindings.items()]
    return api.patch(f"workspaces/{workspace_id}/tag-bindings", {"data": data})


def names(api: Api, query: str) -> list[str]:
    response = api.get(f"organizations/acme/workspaces?{query}")
    assert response.status_code == 200, response.json
    return [w["attributes"]["name"] for w in response.json["data"]]


def test_create_with_tags_and_bindings_as_go_tfe_sends_them(api: Api) -> None:
    body = {
        "data": {
            "type": "workspaces",
            "attributes": {"name": "web"},
            "relationships": {
                "tags": {"data": [{"type": "tags", "attributes": {"name": "app"}}]},
                "tag-bindings": {"data": [{"type": "tag-bindings", "attributes": {"key": "env", "value": "prod"}}]},
            },
        }
    }
    created = api.post("organizations/acme/workspaces", body)
    assert created.status_code == 201, created.json
    workspace = created.json["data"]
    assert workspace["attributes"]["tag-names"] == ["app", "env"]
    assert bindings_of(api, workspace["id"]) == {"app": "", "env": "prod"}
    assert bindings_of(api, workspace["id"], "effective-tag-bindings") == {"app": "", "env": "prod"}


def test_patch_bindings_adds_and_changes_values_and_both_views_agree(api: Api) -> None:
    workspace = api.create_workspace("web", **{"tag-names": ["app"]})
    response = patch_bindings(api, workspace["id"], {"env": "staging", "app": ""})
    assert response.status_code == 200, response.json
    assert {b["attributes"]["key"] for b in response.json["data"]} == {"app", "env"}
    assert patch_bindings(api, workspace["id"], {"env": "prod"}).status_code == 200
    assert bindings_of(api, workspace["id"]) == {"app": "", "env": "prod"}
    plain = api.get(f"workspaces/{workspace['id']}/relationships/tags").json["data"]
    assert [t["attributes"]["name"] for t in plain] == ["app", "env"]
    # adding a plain tag whose key has a value keeps the value
    api.post(
        f"workspaces/{workspace['id']}/relationships/tags", {"data": [{"type": "tags", "attributes": {"name": "env"}}]}
    )
    assert bindings_of(api, workspace["id"])["env"] == "prod"


def test_listings_filter_by_keys_and_by_bindings(api: Api) -> None:
    for name, bindings in (("a", {"app": "", "env": "prod"}), ("b", {"app": "", "env": "dev"}), ("c", {"db": ""})):
        workspace = api.create_workspace(name)
        assert patch_bindings(api, workspace["id"], bindings).status_code == 200
    assert names(api, "search[tags]=app") == ["a", "b"]
    assert names(api, "search[tags]=app,env") == ["a", "b"]
    assert names(api, "search[tags]=env&filter[tagged][0][key]=env&filter[tagged][0][value]=prod") == ["a"]
    assert names(api, "filter[tagged][0][key]=env&filter[tagged][0][value]=") == ["a", "b"]
    assert names(
        api,
        "filter[tagged][0][key]=app&filter[tagged][0][value]=&filter[tagged][1][key]=env&filter[tagged][1][value]=dev",
    ) == ["b"]
    assert names(api, "search[tags]=nothing") == []
    total = api.get("organizations/acme/workspaces?search[tags]=app").json["meta"]["pagination"]["total-count"]
    assert total == 2


def test_updates_replace_tags_as_the_clients_mean_it(api: Api) -> None:
    workspace = api.create_workspace("web")
    patch_bindings(api, workspace["id"], {"env": "prod", "app": "", "team": "core"})
    # tag-names names the whole set of keys; values of kept keys stay
    update = {"data": {"type": "workspaces", "attributes": {"tag-names": ["env", "new"]}}}
    assert api.patch(f"workspaces/{workspace['id']}", update).status_code == 200
    assert bindings_of(api, workspace["id"]) == {"env": "prod", "new": ""}
    # DeleteAllTagBindings: PATCH the workspace with an empty tag-bindings relationship
    clear = {"data": {"type": "workspaces", "relationships": {"tag-bindings": {"data": []}}}}
    assert api.patch(f"workspaces/{workspace['id']}", clear).status_code == 200
    assert bindings_of(api, workspace["id"]) == {}
    # an update without tags leaves them alone
    patch_bindings(api, workspace["id"], {"keep": "me"})
    other = {"data": {"type": "workspaces", "attributes": {"auto-apply": True}}}
    assert api.patch(f"workspaces/{workspace['id']}", other).status_code == 200
    assert bindings_of(api, workspace["id"]) == {"keep": "me"}


def test_bad_tag_bodies_are_400_and_change_nothing(api: Api) -> None:
    workspace = api.create_workspace("web")
    patch_bindings(api, workspace["id"], {"env": "prod"})
    path = f"workspaces/{workspace['id']}/tag-bindings"
    for body, words in (
        ({"data": "x"}, ('"data" must be a list',)),
        ({"data": []}, ("at least one",)),
        ({"data": [{"type": "tag-bindings"}]}, ("each tag binding",)),
        ({"data": [{"type": "tag-bindings", "attributes": {"key": "bad key!", "value": "x"}}]}, ("tags are",)),
        ({"data": [{"type": "tag-bindings", "attributes": {"key": "k", "value": 'quote"'}}]}, ("tag values",)),
        ({"data": [{"type": "tag-bindings", "attributes": {"key": "k", "value": 5}}]}, ("tag values",)),
    ):
        assert_error(api.patch(path, body), 400, *words)
    too_many = {f"k{n}": "" for n in range(101)}
    assert_error(patch_bindings(api, workspace["id"], too_many), 400, "at most 100")
    assert_error(api.get("organizations/acme/workspaces?filter[tagged][0][key]=bad key"), 400, "tags are")
    assert bindings_of(api, workspace["id"]) == {"env": "prod"}


def test_changing_tags_needs_write(app: Flask, client: FlaskClient, api: Api) -> None:
    workspace = api.create_workspace("web")
    reader = Api(client, make_token(app, subject="reader", role="default"))
    assert patch_bindings(reader, workspace["id"], {"env": "x"}).status_code == 403
    assert bindings_of(reader, workspace["id"]) == {}
    outputs = Api(client, make_token(app, scope="outputs-only"))
    assert patch_bindings(outputs, workspace["id"], {"env": "x"}).status_code == 403


def test_tag_changes_are_audited(app: Flask, api: Api) -> None:
    from app.repositories.audit import list_events

    workspace = api.create_workspace("web")
    patch_bindings(api, workspace["id"], {"env": "prod"})
    with app.app_context():
        events = [e for e in list_events() if e.action == "workspace.tags"]
        assert events and events[0].detail["tags"] == {"env": "prod"}
