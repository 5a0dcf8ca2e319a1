"""The audit log API: every change is there with the right actor; filters and pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from tests.factories import basic, bearer, lock_info
from tests.internal.conftest import Ui, join, state, token_for

EVENT_KEYS = {"id", "at", "actor", "action", "outcome", "org_id", "unit_id", "unit_name", "detail", "request_id"}


def actions(response) -> list[tuple[str, str, str | None]]:
    return [(e["action"], e["actor"], e["unit_name"]) for e in response.json["events"]]


def test_every_change_is_audited_with_its_actor(client: FlaskClient, acme: Ui) -> None:
    unit = acme.post("/units", {"name": "prod"}).json
    acme.patch("/units/prod", {"tfe_auto_apply": True})
    acme.post("/units/prod/upload", data=state(1, "one"))
    lock = acme.post("/units/prod/lock").json
    acme.post(f"/units/prod/upload?if_locked_by={lock['id']}", data=state(2, "two"))
    acme.delete("/units/prod/unlock", {"id": lock["id"]})
    acme.post("/units/prod/lock", {"id": "forgotten"})
    acme.delete("/units/prod/unlock")  # force
    oldest = acme.get("/units/prod/versions").json["versions"][-1]
    acme.post("/units/prod/restore", {"timestamp": oldest["timestamp"]})
    acme.post(
        "/rbac/permissions", {"name": "p", "rules": [{"actions": ["unit.read"], "resources": ["*"], "effect": "allow"}]}
    )
    acme.post("/rbac/roles", {"name": "r", "permissions": ["p"]})
    join(acme, "bob", "r")
    token = token_for(client.application, "acme", "bob")
    info = lock_info("tf", "bob", created="2026-01-01T00:00:00Z")
    assert client.open("/state/acme/prod", method="LOCK", data=info, headers=basic(token)).status_code == 403

    log = acme.get("/audit?page_size=200")
    assert log.status_code == 200
    assert all(set(e) == EVENT_KEYS for e in log.json["events"])
    seen = list(reversed(actions(log)))
    expected = [
        ("org.create", "alice", None),
        ("workspace.create", "alice", "prod"),
        ("workspace.update", "alice", "prod"),
        ("state.write", "alice", "prod"),
        ("lock", "alice", "prod"),
        ("state.write", "alice", "prod"),
        ("unlock", "alice", "prod"),
        ("lock", "alice", "prod"),
        ("force_unlock", "alice", "prod"),
        ("state.write", "alice", "prod"),
        ("state.rollback", "alice", "prod"),
        ("permission.create", "alice", None),
        ("role.create", "alice", None),
        ("member.add", "bob", None),
        ("role.assign", "bob", None),
        ("role.assign", "alice", None),
        ("role.revoke", "alice", None),
        ("token.create", "test", None),
    ]
    assert seen[: len(expected)] == expected, seen
    rollback = next(e for e in log.json["events"] if e["action"] == "state.rollback")
    assert rollback["detail"]["from_version"] == oldest["id"]
    assert rollback["unit_id"] == unit["id"]
    assert {e["request_id"] for e in log.json["events"] if e["action"] == "force_unlock"} == {"ui-test"}


def test_filters_and_pages(acme: Ui) -> None:
    acme.post("/units", {"name": "prod"})
    acme.post("/units", {"name": "dev"})
    for serial in (1, 2, 3):
        acme.post("/units/prod/upload", data=state(serial))
    acme.as_user("bob").post("/users", {"subject": "bob", "email": "bob@example.com"})

    by_unit = acme.get("/audit?unit=prod")
    assert {e["unit_name"] for e in by_unit.json["events"]} == {"prod"}
    assert by_unit.json["total"] == 4
    unit_id = acme.get("/units/prod").json["id"]
    assert acme.get(f"/audit?unit={unit_id}").json["total"] == 4
    writes = acme.get("/audit?action=state.write")
    assert writes.json["total"] == 3
    assert acme.get("/audit?action=workspace.*").json["total"] == 2
    assert [e["actor"] for e in acme.get("/audit?user=bob").json["events"]] == ["bob", "bob"]
    page = acme.get("/audit?unit=prod&page=2&page_size=3")
    assert (page.json["count"], page.json["total"], page.json["page"], page.json["page_size"]) == (1, 4, 2, 3)
    assert page.json["events"][0]["action"] == "workspace.create"

    now = datetime.now(UTC)
    future = (now + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    past = (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert acme.get(f"/audit?since={future}").json["total"] == 0
    assert acme.get(f"/audit?until={past}").json["total"] == 0
    assert acme.get(f"/audit?since={past}&until={future}&unit=prod").json["total"] == 4
    assert acme.get("/audit?since=last-tuesday").status_code == 400
    assert acme.get("/audit?page=0").status_code == 400


def test_readers_see_the_history_of_units_they_can_read(client: FlaskClient, acme: Ui) -> None:
    acme.post("/units", {"name": "prod"})
    reader = join(acme, "bob")
    assert reader.get("/audit").status_code == 403
    assert reader.get("/audit?unit=prod").json["total"] == 1
    token = token_for(client.application, "acme", "alice")
    assert client.get("/v1/audit?action=org.create", headers=bearer(token)).json["total"] == 1
