"""A member of organization A reaches nothing of organization B, by name or by id: 404, and no existence leak."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.factories import basic, bearer
from tests.internal.conftest import Ui, state, token_for


def test_org_a_member_reaches_nothing_of_org_b(client: FlaskClient, ui: Ui) -> None:
    ui.post("/orgs/sync", {"name": "alpha", "display_name": "A", "external_org_id": "org_a"})
    mallory = ui.as_user("mallory")
    mallory.post("/orgs/sync", {"name": "beta", "display_name": "B", "external_org_id": "org_b"})
    alpha, beta = ui.in_org("org_a"), mallory.in_org("org_b")
    secret_unit = beta.post("/units", {"name": "secret"}).json["id"]
    beta.post("/units/secret/upload", data=state(1))
    beta_org_id = beta.get("/me").json["org_id"]
    alice_token = token_for(client.application, "alpha", "alice")

    # Internal door: X-Org-ID of the other organization, by external id, id or name, is the unknown-org 404.
    unknown = ui.in_org("org_nowhere").get("/units").json["error"].replace("org_nowhere", "X")
    for ref in ("org_b", beta_org_id, "beta"):
        response = ui.in_org(ref).get("/units")
        assert response.status_code == 404, ref
        assert response.json["error"].replace(ref, "X") == unknown
        assert ui.in_org(ref).get(f"/units/{secret_unit}").status_code == 404
        assert ui.in_org(ref).post("/units", {"name": "x"}).status_code == 404
        assert ui.in_org(ref).get("/rbac/roles").status_code == 404
        assert ui.in_org(ref).get("/audit").status_code == 404
        assert ui.in_org(ref).get("/users").status_code == 404
    # Its own organization does not resolve the other's units by id or name.
    for ref in (secret_unit, "secret"):
        assert alpha.get(f"/units/{ref}").status_code == 404
        assert alpha.get(f"/units/{ref}/download").status_code == 404
        assert alpha.post(f"/units/{ref}/restore", {"version_id": "x"}).status_code == 404
        assert alpha.post(f"/units/{ref}/lock").status_code == 404
        assert alpha.delete(f"/units/{ref}").status_code == 404
    assert [u["name"] for u in alpha.get("/units").json["units"]] == []
    assert alpha.get("/orgs/beta").status_code == 404

    # /v1 with alice's token: ?org= of the other organization, or the other's unit ids, are 404.
    missing = client.get("/v1/units?org=nowhere", headers=bearer(alice_token)).json["error"]
    for ref in ("beta", "org_b", beta_org_id):
        response = client.get(f"/v1/units?org={ref}", headers=bearer(alice_token))
        assert response.status_code == 404
        assert response.json["error"].replace(ref, "nowhere") == missing
    assert client.get(f"/v1/units/{secret_unit}", headers=bearer(alice_token)).status_code == 404
    # http backend: the other organization by name, and the other's unit id through /v1/backend.
    assert client.get("/state/beta/secret", headers=basic(alice_token)).status_code == 404
    assert client.post("/state/beta/secret", data=state(9), headers=basic(alice_token)).status_code == 404
    assert client.get(f"/v1/backend/{secret_unit}", headers=basic(alice_token)).status_code == 404
    assert client.get(f"/v1/backend/{secret_unit}?org=beta", headers=basic(alice_token)).status_code == 404
    # Nothing of beta changed.
    assert beta.get("/units/secret/versions").json["count"] == 1
