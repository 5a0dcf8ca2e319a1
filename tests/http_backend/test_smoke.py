from __future__ import annotations

import json

from tests.factories import basic, make_token


def test_write_then_read(app, client):
    token = make_token(app)
    state = json.dumps({"version": 4, "serial": 0, "lineage": "l1", "outputs": {}, "resources": []}).encode()
    response = client.post("/state/acme/prod", data=state, headers=basic(token))
    assert response.status_code == 200, response.json
    response = client.get("/state/acme/prod", headers=basic(token))
    assert response.status_code == 200
    assert response.data == state
