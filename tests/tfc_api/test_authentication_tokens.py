"""User tokens through the TFE API: create, list, show, revoke; only one's own, and never a stronger token."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from app.core.clock import utcnow
from app.extensions import db
from app.models import ApiToken
from tests.factories import make_token
from tests.tfc_api.conftest import Api


def api_for(app: Flask, token: str) -> Api:
    return Api(app.test_client(), token)


def me(api: Api) -> str:
    response = api.get("account/details")
    assert response.status_code == 200
    return str(response.json["data"]["id"])


def create(api: Api, user_id: str, **attributes: object) -> dict[str, object]:
    response = api.post(
        f"users/{user_id}/authentication-tokens", {"data": {"type": "authentication-tokens", "attributes": attributes}}
    )
    assert response.status_code == 201, response.json
    return dict(response.json["data"])


def stored(app: Flask, token_id: str) -> ApiToken:
    with app.app_context():
        token = db.session.get(ApiToken, token_id)
        assert token is not None
        db.session.expunge(token)
        return token


def test_create_list_show_and_revoke_ones_own_token(app: Flask) -> None:
    alice = api_for(app, make_token(app))
    user_id = me(alice)
    made = create(alice, user_id, description="laptop")
    secret = made["attributes"]["token"]  # type: ignore[index]
    assert isinstance(secret, str) and secret.startswith("stm_")
    assert made["type"] == "authentication-tokens"
    assert made["relationships"]["created-by"]["data"] == {"id": user_id, "type": "users"}  # type: ignore[index]
    new = api_for(app, secret)
    assert me(new) == user_id

    listed = alice.get(f"users/{user_id}/authentication-tokens")
    assert listed.status_code == 200
    by_id = {item["id"]: item["attributes"] for item in listed.json["data"]}
    assert by_id[made["id"]]["description"] == "laptop" and by_id[made["id"]]["token"] is None
    assert listed.json["meta"]["pagination"]["total-count"] == 2  # the caller's own token and the new one
    shown = alice.get(f"authentication-tokens/{made['id']}")
    assert shown.status_code == 200 and shown.json["data"]["attributes"]["token"] is None

    assert alice.delete(f"authentication-tokens/{made['id']}").status_code == 204
    assert new.get("account/details").status_code == 401
    assert alice.get(f"authentication-tokens/{made['id']}").status_code == 404


def test_other_users_tokens_are_not_found(app: Flask) -> None:
    alice = api_for(app, make_token(app))
    bob = api_for(app, make_token(app, subject="bob"))
    alice_id = me(alice)
    made = create(alice, alice_id)
    assert bob.get(f"users/{alice_id}/authentication-tokens").status_code == 404
    assert bob.post(f"users/{alice_id}/authentication-tokens", {"data": {"attributes": {}}}).status_code == 404
    assert bob.get(f"authentication-tokens/{made['id']}").status_code == 404
    assert bob.delete(f"authentication-tokens/{made['id']}").status_code == 404
    assert api_for(app, str(made["attributes"]["token"])).get("account/details").status_code == 200  # type: ignore[index]


def test_organization_tokens_and_other_organizations_get_nothing(app: Flask) -> None:
    alice = api_for(app, make_token(app))
    alice_id = me(alice)
    permissions = alice.get("account/details").json["data"]["attributes"]["permissions"]
    assert permissions["can-manage-user-tokens"] is True
    made = create(alice, alice_id)
    service = api_for(app, make_token(app, subject=None))
    assert service.get("account/details").json["data"]["attributes"]["permissions"]["can-manage-user-tokens"] is False
    assert service.get(f"users/{me(service)}/authentication-tokens").status_code == 404
    assert service.delete(f"authentication-tokens/{made['id']}").status_code == 404
    # alice's token in another organization does not see her acme tokens.
    elsewhere = api_for(app, make_token(app, org="globex"))
    assert me(elsewhere) == alice_id
    listed = elsewhere.get(f"users/{alice_id}/authentication-tokens").json["data"]
    assert made["id"] not in {item["id"] for item in listed}
    assert elsewhere.delete(f"authentication-tokens/{made['id']}").status_code == 404


def test_a_token_never_mints_a_stronger_one(app: Flask) -> None:
    narrow = api_for(app, make_token(app, scope="read-only", workspace="prod"))
    made = create(narrow, me(narrow), description="copy")
    token = stored(app, str(made["id"]))
    assert (token.scope, token.workspace_name) == ("read-only", "prod")


def test_expiry_is_capped_at_the_callers_own(app: Flask) -> None:
    alice = api_for(app, make_token(app))
    user_id = me(alice)
    soon = create(alice, user_id, **{"expired-at": (utcnow() + timedelta(hours=2)).isoformat() + "Z"})
    short = stored(app, str(soon["id"]))
    assert short.expires_at is not None and timedelta(hours=1) < short.expires_at - utcnow() <= timedelta(hours=2)
    # The short-lived token asks for a year and a token without expiry: both end when it ends.
    short_api = api_for(app, str(soon["attributes"]["token"]))  # type: ignore[index]
    for attributes in ({"expired-at": (utcnow() + timedelta(days=365)).isoformat() + "Z"}, {}):
        child = stored(app, str(create(short_api, user_id, **attributes)["id"]))
        assert child.expires_at == short.expires_at


def test_bad_expiry_and_description_are_400(app: Flask) -> None:
    alice = api_for(app, make_token(app))
    path = f"users/{me(alice)}/authentication-tokens"
    for attributes in (
        {"expired-at": "tomorrow"},
        {"expired-at": "2030-01-01T00:00:00"},  # no zone
        {"expired-at": (utcnow() - timedelta(minutes=1)).isoformat() + "Z"},
        {"expired-at": 5},
        {"description": ["x"]},
        {"description": "x" * 256},
    ):
        response = alice.post(path, {"data": {"type": "authentication-tokens", "attributes": attributes}})
        assert response.status_code == 400, (attributes, response.json)
    wrong_type = alice.post(path, {"data": {"type": "workspaces", "attributes": {}}})
    assert wrong_type.status_code == 400
