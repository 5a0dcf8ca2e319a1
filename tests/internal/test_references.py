"""Every reference is unambiguous: a name can never take the shape of an id, an id-shaped reference is only looked up
as an id, and an organization's name, id and external id can never shadow another organization's."""

from __future__ import annotations

import json
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import Organization, Workspace
from tests.factories import basic, bearer, lock_info
from tests.internal.conftest import Ui, state, token_for

TFC = "application/vnd.api+json"


def tfc(client: FlaskClient, token: str, method: str, path: str, body: object = None):  # type: ignore[no-untyped-def]
    data = json.dumps(body) if body is not None else None
    return client.open(f"/api/v2{path}", method=method, data=data, headers={**bearer(token), "Content-Type": TFC})


def workspace_body(name: str) -> dict:
    return {"data": {"type": "workspaces", "attributes": {"name": name}}}


@pytest.fixture
def vault_id(acme: Ui) -> str:
    """The id of acme's unit ``zz-vault2``, which holds a secret."""
    response = acme.post("/units", {"name": "zz-vault2"})
    assert response.status_code == 201
    assert acme.post("/units/zz-vault2/upload", data=state(1, greeting="the-secret")).status_code == 200
    return str(response.json["id"])


def test_no_api_creates_a_workspace_named_like_an_id(app: Flask, client: FlaskClient, acme: Ui, vault_id: str) -> None:
    token = token_for(app, "acme", "alice")
    for name in (vault_id, "ws-AAAAAAAAAAAAAAAA", "sv-0123456789abcdef", "org-AbCdEfGhIjKlMnOp", str(uuid.uuid4())):
        answers = {
            "http POST": client.post(f"/state/acme/{name}", data=state(1), headers=basic(token)),
            "http LOCK": client.open(f"/state/acme/{name}", method="LOCK", data=lock_info(), headers=basic(token)),
            "http GitLab lock": client.post(f"/state/acme/{name}/lock", data=lock_info(), headers=basic(token)),
            "tfc create": tfc(client, token, "POST", "/organizations/acme/workspaces", workspace_body(name)),
            "internal create": acme.post("/units", {"name": name}),
            "v1 create": client.post(
                "/v1/units",
                data=json.dumps({"name": name}),
                headers={**bearer(token), "Content-Type": "application/json"},
            ),
        }
        for door, response in answers.items():
            assert response.status_code == 400, (door, name, response.status_code, response.data[:200])
            assert b"shape of an id" in response.data, (door, response.data[:200])
        renamed = tfc(client, token, "PATCH", "/organizations/acme/workspaces/zz-vault2", workspace_body(name))
        assert renamed.status_code == 400 and b"shape of an id" in renamed.data
    names = [unit["name"] for unit in acme.get("/units").json["units"]]
    assert names == ["zz-vault2"]
    # names that merely start like an id stay valid
    assert acme.post("/units", {"name": "ws-prod"}).status_code == 201
    assert acme.post("/units", {"name": "org-acme-network"}).status_code == 201


def test_an_id_shaped_legacy_name_never_captures_requests_by_id(
    app: Flask, client: FlaskClient, acme: Ui, vault_id: str
) -> None:
    """A row written before names were checked cannot shadow the real workspace on any database."""
    with app.app_context():
        org = db.session.scalar(db.select(Organization).where(Organization.name == "acme"))
        assert org is not None
        db.session.add(Workspace(org_id=org.id, name=vault_id))
        db.session.commit()
    token = token_for(app, "acme", "alice")
    by_id = tfc(client, token, "GET", f"/organizations/acme/workspaces/{vault_id}")
    assert by_id.status_code == 200 and by_id.json["data"]["attributes"]["name"] == "zz-vault2"
    download = acme.get(f"/units/{vault_id}/download")
    assert json.loads(download.data)["outputs"]["greeting"]["value"] == "the-secret"
    assert client.get(f"/v1/backend/{vault_id}", headers=basic(token)).status_code == 200
    locked = acme.post(f"/units/{vault_id}/lock", {"id": "admin-lock"})
    assert locked.status_code == 200
    assert acme.get("/units/zz-vault2").json["locked"] is True


def test_external_ids_cannot_shadow_names_or_ids(acme: Ui, ui: Ui) -> None:
    carol = ui.as_user("carol")
    acme_id = acme.get("/orgs/acme").json["id"]
    clash_name = carol.post("/orgs/sync", {"name": "globex", "display_name": "G", "external_org_id": "acme"})
    assert clash_name.status_code == 409 and "already exists" in clash_name.json["message"]
    clash_id = carol.post("/orgs/sync", {"name": "globex", "display_name": "G", "external_org_id": acme_id})
    assert clash_id.status_code == 400 and "shape of an id" in clash_id.json["message"]
    assert carol.post("/orgs", {"name": "globex", "external_org_id": "acme"}).status_code == 409
    created = carol.post("/orgs/sync", {"name": "org_acme", "display_name": "G", "external_org_id": "org_globex"})
    assert created.status_code == 201
    assert created.json["organization"]["name"] != "org_acme"  # acme's external id is taken as a name
    # after all that, every reference to acme still means acme
    for ref in ("acme", acme_id, "org_acme"):
        assert acme.in_org(ref).get("/me").json["organization"]["name"] == "acme", ref


def test_renames_cannot_take_another_organizations_reference(app: Flask, client: FlaskClient, acme: Ui, ui: Ui) -> None:
    assert (
        ui.as_user("carol")
        .post("/orgs/sync", {"name": "globex", "display_name": "G", "external_org_id": "org_globex"})
        .status_code
        == 201
    )
    carol = token_for(app, "globex", "carol")
    attributes = {"data": {"type": "organizations", "attributes": {"name": "org_acme"}}}
    response = tfc(client, carol, "PATCH", "/organizations/globex", attributes)
    assert response.status_code == 409


def test_legacy_collisions_resolve_in_the_documented_order(app: Flask) -> None:
    """Rows written before the rule: an id-shaped reference is an id; otherwise a name wins over an external id."""
    from app.repositories.orgs import get_org

    with app.app_context():
        first = Organization(name="alpha", display_name="A", external_org_id="beta")
        second = Organization(name="beta", display_name="B", external_org_id="ext-2")
        db.session.add_all([first, second])
        db.session.commit()
        found = get_org("beta")
        assert found is not None and found.name == "beta"
        found = get_org(first.id)
        assert found is not None and found.name == "alpha"
        assert get_org("ext-2") is not None and get_org("ext-2").name == "beta"  # type: ignore[union-attr]
        assert get_org("org-AAAAAAAAAAAAAAAA") is None
