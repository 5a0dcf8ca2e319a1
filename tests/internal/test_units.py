"""Units: every endpoint's JSON shape, and the flows the UI drives (lock, upload, versions, restore)."""

from __future__ import annotations

import json

from tests.internal.conftest import Ui, state

UNIT_KEYS = {
    "id",
    "name",
    "absolute_name",
    "size",
    "updated",
    "locked",
    "tfe_auto_apply",
    "tfe_terraform_version",
    "tfe_engine",
    "tfe_working_directory",
    "tfe_execution_mode",
}
VERSION_KEYS = {"id", "timestamp", "hash", "size", "serial", "isLatest"}
LOCK_KEYS = {"id", "who", "version", "created"}


def create(acme: Ui, name: str = "prod", **settings: object) -> dict:
    response = acme.post("/units", {"name": name, **settings})
    assert response.status_code == 201, response.json
    return response.json


def test_create_and_show(acme: Ui) -> None:
    created = create(
        acme,
        "prod",
        tfe_auto_apply=True,
        tfe_execution_mode="remote",
        tfe_terraform_version="1.6.0",
        tfe_engine="tofu",
        tfe_working_directory="infra",
    )
    assert set(created) == {"id", "name", "created"}
    assert created["name"] == "prod"
    for ref in (created["id"], "prod"):
        shown = acme.get(f"/units/{ref}")
        assert shown.status_code == 200
        assert set(shown.json) == UNIT_KEYS
    unit = shown.json
    assert unit["absolute_name"] == "org-acme/prod"
    assert (unit["size"], unit["locked"]) == (0, False)
    assert (
        unit["tfe_auto_apply"],
        unit["tfe_execution_mode"],
        unit["tfe_terraform_version"],
        unit["tfe_engine"],
        unit["tfe_working_directory"],
    ) == (True, "remote", "1.6.0", "tofu", "infra")


def test_create_conflict_and_bad_names(acme: Ui) -> None:
    create(acme)
    assert acme.post("/units", {"name": "prod"}).status_code == 409
    bad = acme.post("/units", {"name": "no spaces"})
    assert bad.status_code == 400
    assert "1-90 characters" in bad.json["error"]
    assert acme.post("/units", {"name": "x", "tfe_execution_mode": "sideways"}).status_code == 400


def test_list_with_prefix_and_pages(acme: Ui) -> None:
    for name in ("prod-a", "prod-b", "dev"):
        create(acme, name)
    listed = acme.get("/units")
    assert listed.status_code == 200
    assert [u["name"] for u in listed.json["units"]] == ["dev", "prod-a", "prod-b"]
    assert listed.json["count"] == 3
    assert all(set(u) == UNIT_KEYS for u in listed.json["units"])
    prefixed = acme.get("/units?prefix=prod-")
    assert [u["name"] for u in prefixed.json["units"]] == ["prod-a", "prod-b"]
    page = acme.get("/units?page=2&page_size=2")
    assert [u["name"] for u in page.json["units"]] == ["prod-b"]
    assert (page.json["count"], page.json["total"], page.json["page"], page.json["page_size"]) == (1, 3, 2, 2)


def test_patch_changes_only_given_settings(acme: Ui) -> None:
    create(acme, tfe_execution_mode="remote", tfe_terraform_version="1.5.0")
    patched = acme.patch("/units/prod", {"tfe_auto_apply": True, "tfe_terraform_version": None})
    assert patched.status_code == 200
    assert set(patched.json) == UNIT_KEYS
    assert (
        patched.json["tfe_auto_apply"],
        patched.json["tfe_execution_mode"],
        patched.json["tfe_terraform_version"],
    ) == (True, "remote", "1.5.0")


def test_upload_download_versions_restore(acme: Ui) -> None:
    unit = create(acme)
    first = acme.post(f"/units/{unit['id']}/upload", data=state(1, "one"))
    assert first.status_code == 200, first.json
    assert first.json["status"] == "stored"
    assert set(first.json["version"]) == VERSION_KEYS
    second = acme.post(f"/units/{unit['id']}/upload", data=state(2, "two"))
    assert second.status_code == 200
    download = acme.get(f"/units/{unit['id']}/download")
    assert download.status_code == 200
    assert download.data == state(2, "two")
    assert download.json["outputs"]["greeting"]["value"] == "two"

    versions = acme.get(f"/units/{unit['id']}/versions")
    assert versions.status_code == 200
    assert set(versions.json) == {"unit_id", "versions", "count"}
    assert versions.json["unit_id"] == unit["id"]
    assert versions.json["count"] == 2
    assert all(set(v) == VERSION_KEYS for v in versions.json["versions"])
    newest, oldest = versions.json["versions"]
    assert (newest["serial"], newest["isLatest"], oldest["serial"], oldest["isLatest"]) == (2, True, 1, False)
    assert oldest["timestamp"].endswith("Z") and len(oldest["timestamp"]) == len("2026-01-31T12:00:00.123456Z")

    restored = acme.post(f"/units/{unit['id']}/restore", {"timestamp": oldest["timestamp"], "lock_id": ""})
    assert restored.status_code == 200, restored.json
    assert restored.json["restored_version_id"] == oldest["id"]
    assert restored.json["restored_timestamp"] == oldest["timestamp"]
    assert restored.json["version"]["serial"] == 3
    current = json.loads(acme.get(f"/units/{unit['id']}/download").data)
    assert (current["serial"], current["outputs"]["greeting"]["value"]) == (3, "one")
    by_id = acme.post("/units/prod/restore", {"version_id": newest["id"]})
    assert by_id.json["version"]["serial"] == 4
    assert acme.post("/units/prod/restore", {"timestamp": "2001-01-01T00:00:00.000000Z"}).status_code == 404
    assert acme.post("/units/prod/restore", {"timestamp": "yesterday"}).status_code == 400
    assert acme.post("/units/prod/restore", {}).status_code == 400
    assert acme.get("/units/prod").json["size"] > 0


def test_upload_goes_through_the_write_guards(acme: Ui) -> None:
    create(acme)
    acme.post("/units/prod/upload", data=state(5))
    lower = acme.post("/units/prod/upload", data=state(4))
    assert lower.status_code == 409
    assert "lower than the current serial" in lower.json["error"]
    other = acme.post("/units/prod/upload", data=state(6, lineage="other"))
    assert other.status_code == 409
    assert acme.post("/units/prod/upload", data=b"not json").status_code == 400
    same = acme.post("/units/prod/upload", data=state(5))
    assert (same.status_code, same.json["status"]) == (200, "unchanged")


def test_lock_without_a_body_and_unlock_without_an_id(acme: Ui) -> None:
    create(acme)
    locked = acme.post("/units/prod/lock")
    assert locked.status_code == 200, locked.json
    assert set(locked.json) == LOCK_KEYS
    assert locked.json["who"] == "alice@example.com"
    shown = acme.get("/units/prod").json
    assert shown["locked"] is True
    assert shown["lock_info"] == locked.json
    refused = acme.post("/units/prod/upload", data=state(1))
    assert refused.status_code == 409
    assert refused.json["lock"]["id"] == locked.json["id"]
    accepted = acme.post(f"/units/prod/upload?if_locked_by={locked.json['id']}", data=state(1))
    assert accepted.status_code == 200
    stranger = acme.as_user("bob").post("/units/prod/lock", {"id": "other", "who": "bob"})
    assert stranger.status_code == 404  # not a member of acme
    unlocked = acme.delete("/units/prod/unlock")
    assert unlocked.status_code == 200
    assert unlocked.json["status"] == "unlocked"
    assert unlocked.json["lock"]["id"] == locked.json["id"]
    again = acme.delete("/units/prod/unlock")
    assert (again.status_code, again.json["status"]) == (200, "not_locked")


def test_lock_with_a_body_conflicts_and_unlock_by_id(acme: Ui) -> None:
    create(acme)
    mine = acme.post("/units/prod/lock", {"id": "L1", "who": "ci", "version": "1.0.0"})
    assert mine.json == {"id": "L1", "who": "ci", "version": "1.0.0", "created": mine.json["created"]}
    assert acme.post("/units/prod/lock", {"id": "L1", "who": "ci", "version": "1.0.0"}).status_code == 200
    other = acme.post("/units/prod/lock", {"id": "L2", "who": "someone"})
    assert other.status_code == 409
    assert other.json["lock"]["id"] == "L1"
    wrong = acme.delete("/units/prod/unlock", {"id": "L2"})
    assert wrong.status_code == 409
    assert wrong.json["lock"]["id"] == "L1"
    assert acme.delete("/units/prod", None).status_code == 409
    right = acme.delete("/units/prod/unlock", {"id": "L1"})
    assert (right.status_code, right.json["status"]) == (200, "unlocked")


def test_a_lock_taken_through_the_http_backend_shows_in_the_unit(acme: Ui, client) -> None:
    from tests.factories import basic, lock_info
    from tests.internal.conftest import token_for

    create(acme)
    token = token_for(client.application, "acme", "alice")
    info = lock_info("tf-1", "alice@laptop", created="2026-01-01T00:00:00Z")
    assert client.open("/state/acme/prod", method="LOCK", data=info, headers=basic(token)).status_code == 200
    unit = acme.get("/units/prod").json
    assert unit["lock_info"] == {
        "id": "tf-1",
        "who": "alice@laptop",
        "version": "1.0.3",
        "created": "2026-01-01T00:00:00Z",
    }


def test_delete_and_status(acme: Ui) -> None:
    unit = create(acme)
    acme.post("/units/prod/upload", data=state(1))
    status = acme.get(f"/units/{unit['id']}/status")
    assert status.status_code == 200
    assert status.json == {
        "unit_id": unit["id"],
        "status": "green",
        "incoming": [],
        "summary": {"incoming_ok": 0, "incoming_pending": 0, "incoming_unknown": 0},
    }
    deleted = acme.delete(f"/units/{unit['id']}")
    assert deleted.status_code == 200
    assert deleted.json["status"] == "deleted"
    assert acme.get("/units/prod").status_code == 404
    assert acme.get(f"/units/{unit['id']}/download").status_code == 404
    assert acme.get("/units/prod/download").is_json


def test_download_of_a_unit_without_state_is_json_404(acme: Ui) -> None:
    create(acme)
    response = acme.get("/units/prod/download")
    assert response.status_code == 404
    assert "no state" in response.json["error"]
