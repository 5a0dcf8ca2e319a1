"""Organization tokens, agent pools and agent tokens through the TFE API; agent tokens refused by every other API."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import basic, bearer, make_token
from tests.tfc_api.conftest import Api

TOKENS = "authentication-tokens"
AGENT_ONLY = "agent tokens only authenticate Statesman agents; use a user or organization token"


def api_for(app: Flask, token: str) -> Api:
    return Api(app.test_client(), token)


def body(type_: str, **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": type_, "attributes": attributes}}


def make_pool(api: Api, name: str = "builders", org: str = "acme") -> dict[str, Any]:
    response = api.post(f"organizations/{org}/agent-pools", body("agent-pools", name=name))
    assert response.status_code == 201, response.json
    return dict(response.json["data"])


def make_agent_token(api: Api, pool_id: str, description: str = "runner-1") -> tuple[str, str]:
    """(token id, secret) of a new agent token of the pool."""
    response = api.post(f"agent-pools/{pool_id}/authentication-tokens", body(TOKENS, description=description))
    assert response.status_code == 201, response.json
    data = response.json["data"]
    assert data["type"] == TOKENS and data["attributes"]["description"] == description
    return str(data["id"]), str(data["attributes"]["token"])


def test_organization_token_create_regenerate_show_and_delete(app: Flask) -> None:
    admin = api_for(app, make_token(app))
    assert admin.get("organizations/acme/authentication-token").status_code == 404  # none yet
    first = admin.post("organizations/acme/authentication-token", body(TOKENS))
    assert first.status_code == 201, first.json
    assert first.json["data"]["type"] == TOKENS
    first_secret = first.json["data"]["attributes"]["token"]
    assert first_secret.startswith("stm_")
    org_api = api_for(app, first_secret)
    details = org_api.get("account/details")
    assert details.status_code == 200 and details.json["data"]["attributes"]["is-service-account"] is True
    assert org_api.create_workspace("prod")["attributes"]["name"] == "prod"

    second = admin.post(
        "organizations/acme/authentication-token", body(TOKENS, **{"expired-at": "2999-01-01T00:00:00Z"})
    )
    assert second.status_code == 201
    assert second.json["data"]["attributes"]["expired-at"] == "2999-01-01T00:00:00.000Z"
    second_id, second_secret = second.json["data"]["id"], second.json["data"]["attributes"]["token"]
    assert second_id != first.json["data"]["id"]
    assert org_api.get("account/details").status_code == 401  # the old one stops working at once
    assert api_for(app, second_secret).get("organizations/acme/workspaces").status_code == 200

    shown = admin.get("organizations/acme/authentication-token")
    assert shown.status_code == 200
    assert shown.json["data"]["id"] == second_id and shown.json["data"]["attributes"]["token"] is None
    by_id = admin.get(f"authentication-tokens/{second_id}")
    assert by_id.status_code == 200 and by_id.json["data"]["attributes"]["token"] is None
    for secret in (first_secret, second_secret):
        assert secret not in shown.get_data(as_text=True) + by_id.get_data(as_text=True)

    assert admin.delete("organizations/acme/authentication-token").status_code == 204
    assert api_for(app, second_secret).get("account/details").status_code == 401
    assert admin.get("organizations/acme/authentication-token").status_code == 404
    assert admin.delete("organizations/acme/authentication-token").status_code == 404


def test_an_organization_token_revoked_by_id(app: Flask) -> None:
    admin = api_for(app, make_token(app))
    made = admin.post("organizations/acme/authentication-token").json["data"]
    assert admin.delete(f"authentication-tokens/{made['id']}").status_code == 204
    assert api_for(app, made["attributes"]["token"]).get("account/details").status_code == 401
    assert admin.get("organizations/acme/authentication-token").status_code == 404


def test_agent_pool_crud(app: Flask) -> None:
    admin = api_for(app, make_token(app))
    pool = make_pool(admin)
    assert pool["type"] == "agent-pools" and pool["id"].startswith("apool-")
    attributes = pool["attributes"]
    assert attributes["name"] == "builders" and attributes["organization-scoped"] is True
    assert attributes["agent-count"] == 0 and attributes["created-at"].endswith("Z")
    assert pool["relationships"]["organization"]["data"] == {"id": "acme", "type": "organizations"}
    make_pool(admin, "deployers")

    duplicate = admin.post("organizations/acme/agent-pools", body("agent-pools", name="builders"))
    assert duplicate.status_code == 409, duplicate.json
    bad_bodies: list[dict[str, Any]] = [
        {"name": "no spaces"},
        {"name": "apool-AAAAAAAAAAAAAAAA"},  # the shape of a pool id
        {},
        {"name": "x", "organization-scoped": False},
    ]
    for bad in bad_bodies:
        response = admin.post("organizations/acme/agent-pools", body("agent-pools", **bad))
        assert response.status_code == 400, (bad, response.json)

    listed = admin.get("organizations/acme/agent-pools")
    assert listed.status_code == 200
    assert [item["attributes"]["name"] for item in listed.json["data"]] == ["builders", "deployers"]
    assert listed.json["meta"]["pagination"]["total-count"] == 2
    assert [i["attributes"]["name"] for i in admin.get("organizations/acme/agent-pools?q=DEPL").json["data"]] == [
        "deployers"
    ]

    assert admin.get(f"agent-pools/{pool['id']}").json["data"]["attributes"]["name"] == "builders"
    renamed = admin.patch(f"agent-pools/{pool['id']}", body("agent-pools", name="linux"))
    assert renamed.status_code == 200 and renamed.json["data"]["attributes"]["name"] == "linux"
    taken = admin.patch(f"agent-pools/{pool['id']}", body("agent-pools", name="deployers"))
    assert taken.status_code == 409
    assert admin.get(f"agent-pools/{pool['id']}").json["data"]["attributes"]["name"] == "linux"

    assert admin.delete(f"agent-pools/{pool['id']}").status_code == 204
    assert admin.get(f"agent-pools/{pool['id']}").status_code == 404
    assert admin.delete(f"agent-pools/{pool['id']}").status_code == 404
    assert admin.get("agent-pools/apool-doesnotexist0000").status_code == 404


def test_agent_tokens_create_list_show_and_delete(app: Flask) -> None:
    admin = api_for(app, make_token(app))
    pool = make_pool(admin)
    token_id, secret = make_agent_token(admin, pool["id"])
    other_id, _ = make_agent_token(admin, make_pool(admin, "other")["id"], "elsewhere")

    listed = admin.get(f"agent-pools/{pool['id']}/authentication-tokens")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json["data"]] == [token_id]  # only the pool's own
    assert listed.json["data"][0]["attributes"]["token"] is None
    assert listed.json["data"][0]["attributes"]["last-used-at"] is None
    shown = admin.get(f"authentication-tokens/{token_id}")
    assert shown.status_code == 200 and shown.json["data"]["attributes"]["description"] == "runner-1"
    assert secret not in listed.get_data(as_text=True) + shown.get_data(as_text=True)

    no_description = admin.post(f"agent-pools/{pool['id']}/authentication-tokens", body(TOKENS))
    assert no_description.status_code == 400

    assert api_for(app, secret).get("account/details").status_code == 403  # valid, but not for this API
    assert admin.delete(f"authentication-tokens/{token_id}").status_code == 204
    assert api_for(app, secret).get("account/details").status_code == 401  # revoked: no longer a token at all
    assert admin.get(f"authentication-tokens/{token_id}").status_code == 404
    assert admin.get(f"authentication-tokens/{other_id}").status_code == 200


def test_deleting_a_pool_revokes_its_tokens_at_once(app: Flask) -> None:
    admin = api_for(app, make_token(app))
    pool = make_pool(admin)
    token_id, secret = make_agent_token(admin, pool["id"])
    assert api_for(app, secret).get("account/details").status_code == 403  # verified (and remembered) as valid
    assert admin.delete(f"agent-pools/{pool['id']}").status_code == 204
    assert api_for(app, secret).get("account/details").status_code == 401
    assert admin.get(f"authentication-tokens/{token_id}").status_code == 404


def assert_agent_refused(client: FlaskClient, secret: str, org: str) -> None:
    """Every API refuses the agent token with 403 and says why, for ``org`` or any other organization."""
    headers = bearer(secret)
    tfc = [
        "account/details",
        "organizations",
        f"organizations/{org}",
        f"organizations/{org}/workspaces",
        f"organizations/{org}/workspaces/prod",
        f"organizations/{org}/agent-pools",
        f"organizations/{org}/authentication-token",
        "users/user-x/authentication-tokens",
        "authentication-tokens/at-x",
    ]
    responses = [client.get(f"/api/v2/{path}", headers=headers) for path in tfc]
    responses.append(client.get(f"/tfe/api/v2/organizations/{org}", headers=headers))
    responses.append(
        client.post(
            f"/api/v2/organizations/{org}/workspaces",
            data=json.dumps(body("workspaces", name="new")),
            headers={**headers, "Content-Type": "application/vnd.api+json"},
        )
    )
    for path in (f"/state/{org}/prod", f"/v1/backend/prod?org={org}"):
        responses.append(client.get(path, headers=basic(secret)))
        responses.append(client.post(path, data=b"{}", headers=basic(secret)))
        responses.append(client.get(path, headers=headers))
    for path in ("/v1/me", f"/v1/units?org={org}", "/v1/health", f"/v1/orgs?org={org}"):
        responses.append(client.get(path, headers=headers))
    for response in responses:
        assert response.status_code == 403, (response.request.path, response.status_code, response.data)
        assert AGENT_ONLY in response.get_data(as_text=True), response.request.path


def test_an_agent_token_is_refused_by_every_api_and_never_works_for_another_org(app: Flask) -> None:
    admin = api_for(app, make_token(app))
    admin.create_workspace("prod")
    globex_admin = api_for(app, make_token(app, org="globex", subject="carol"))
    globex_admin.create_workspace("prod", org="globex")
    _, secret = make_agent_token(admin, make_pool(admin)["id"])
    client = app.test_client()
    assert_agent_refused(client, secret, "acme")
    assert_agent_refused(client, secret, "globex")


def test_members_without_manage_are_refused_and_other_organizations_get_404(app: Flask) -> None:
    admin = api_for(app, make_token(app))
    pool = make_pool(admin)
    token_id, _ = make_agent_token(admin, pool["id"])
    org_token = admin.post("organizations/acme/authentication-token").json["data"]
    member = api_for(app, make_token(app, subject="bob", role="default"))
    service = api_for(app, make_token(app, subject=None))  # an organization-wide token: no user, so no rbac.manage
    read_only_admin = api_for(app, make_token(app, subject="alice", scope="read-only"))
    for caller in (member, service, read_only_admin, api_for(app, org_token["attributes"]["token"])):
        for response in (
            caller.post("organizations/acme/authentication-token"),
            caller.get("organizations/acme/authentication-token"),
            caller.delete("organizations/acme/authentication-token"),
            caller.post("organizations/acme/agent-pools", body("agent-pools", name="mine")),
            caller.get("organizations/acme/agent-pools"),
        ):
            assert response.status_code == 403, (response.request.path, response.json)
        # By id, what the caller may not manage is not there for them: the same 404 as an unknown id.
        for response in (
            caller.get(f"agent-pools/{pool['id']}"),
            caller.patch(f"agent-pools/{pool['id']}", body("agent-pools", name="mine")),
            caller.delete(f"agent-pools/{pool['id']}"),
            caller.post(f"agent-pools/{pool['id']}/authentication-tokens", body(TOKENS, description="x")),
            caller.get(f"agent-pools/{pool['id']}/authentication-tokens"),
            caller.get(f"authentication-tokens/{token_id}"),
            caller.delete(f"authentication-tokens/{token_id}"),
        ):
            assert response.status_code == 404, (response.request.path, response.json)

    outsider = api_for(app, make_token(app, org="globex", subject="carol"))
    for response in (
        outsider.post("organizations/acme/authentication-token"),
        outsider.get("organizations/acme/authentication-token"),
        outsider.delete("organizations/acme/authentication-token"),
        outsider.post("organizations/acme/agent-pools", body("agent-pools", name="mine")),
        outsider.get("organizations/acme/agent-pools"),
        outsider.get(f"agent-pools/{pool['id']}"),
        outsider.patch(f"agent-pools/{pool['id']}", body("agent-pools", name="mine")),
        outsider.delete(f"agent-pools/{pool['id']}"),
        outsider.post(f"agent-pools/{pool['id']}/authentication-tokens", body(TOKENS, description="x")),
        outsider.get(f"agent-pools/{pool['id']}/authentication-tokens"),
        outsider.get(f"authentication-tokens/{token_id}"),
        outsider.delete(f"authentication-tokens/{token_id}"),
        outsider.get(f"authentication-tokens/{org_token['id']}"),
    ):
        assert response.status_code == 404, (response.request.path, response.json)
    # nothing changed
    assert admin.get(f"agent-pools/{pool['id']}").json["data"]["attributes"]["name"] == "builders"
    assert admin.get("organizations/acme/authentication-token").json["data"]["id"] == org_token["id"]
    assert admin.get(f"authentication-tokens/{token_id}").status_code == 200
