"""Roles, permissions, assignments and the permission tester."""

from __future__ import annotations

from tests.internal.conftest import Ui, join

ROLE_KEYS = {
    "id",
    "name",
    "description",
    "permissions",
    "permission_ids",
    "builtin",
    "org_id",
    "created_by",
    "created_at",
}
PERMISSION_KEYS = {"id", "name", "description", "rules", "builtin", "org_id", "created_by", "created_at"}
PROD_WRITE = {
    "name": "prod-write",
    "description": "write prod",
    "rules": [{"actions": ["unit.read", "unit.write", "unit.lock"], "resources": ["prod-*"], "effect": "allow"}],
}


def test_a_new_org_has_the_builtin_roles(acme: Ui) -> None:
    roles = acme.get("/rbac/roles")
    assert roles.status_code == 200
    assert [(r["name"], r["permissions"], r["builtin"]) for r in roles.json["roles"]] == [
        ("admin", ["admin"], True),
        ("default", ["read"], True),
    ]
    assert all(set(r) == ROLE_KEYS and r["org_id"] for r in roles.json["roles"])
    permissions = acme.get("/rbac/permissions")
    assert [(p["name"], p["rules"]) for p in permissions.json["permissions"]] == [
        ("admin", [{"actions": ["*"], "resources": ["*"], "effect": "allow"}]),
        ("read", [{"actions": ["unit.read"], "resources": ["*"], "effect": "allow"}]),
    ]
    assert all(set(p) == PERMISSION_KEYS for p in permissions.json["permissions"])


def test_create_permission_and_role_then_attach_and_detach(acme: Ui) -> None:
    permission = acme.post("/rbac/permissions", PROD_WRITE)
    assert permission.status_code == 201, permission.json
    assert set(permission.json) == PERMISSION_KEYS
    role = acme.post("/rbac/roles", {"name": "deployer", "description": "deploys", "permissions": ["prod-write"]})
    assert role.status_code == 201, role.json
    assert set(role.json) == ROLE_KEYS
    assert role.json["permissions"] == ["prod-write"]
    assert role.json["permission_ids"] == [permission.json["id"]]
    attached = acme.post(f"/rbac/roles/{role.json['id']}/permissions", {"permission_id": "read"})
    assert attached.status_code == 200
    assert attached.json["permissions"] == ["prod-write", "read"]
    assert acme.post("/rbac/roles/deployer/permissions", {"permission_id": "read"}).status_code == 200  # idempotent
    detached = acme.delete(f"/rbac/roles/deployer/permissions/{permission.json['id']}")
    assert detached.status_code == 200
    assert detached.json["permissions"] == ["read"]
    assert acme.delete("/rbac/roles/deployer/permissions/prod-write").status_code == 404


def test_existing_role_names_are_409_never_a_way_to_add_permissions(acme: Ui) -> None:
    acme.post("/rbac/permissions", PROD_WRITE)
    response = acme.post("/rbac/roles", {"name": "default", "permissions": ["prod-write"]})
    assert response.status_code == 409
    default = next(r for r in acme.get("/rbac/roles").json["roles"] if r["name"] == "default")
    assert default["permissions"] == ["read"]
    assert acme.post("/rbac/permissions", PROD_WRITE).status_code == 409


def test_builtin_roles_and_permissions_cannot_be_deleted(acme: Ui) -> None:
    for path in ("/rbac/roles/admin", "/rbac/roles/default", "/rbac/permissions/admin", "/rbac/permissions/read"):
        response = acme.delete(path)
        assert response.status_code == 409, path
        assert "built in" in response.json["error"]
    assert acme.delete("/rbac/roles/admin/permissions/admin").status_code == 409


def test_delete_custom_role_and_permission(acme: Ui) -> None:
    acme.post("/rbac/permissions", PROD_WRITE)
    acme.post("/rbac/roles", {"name": "deployer", "permissions": ["prod-write"]})
    join(acme, "bob", "deployer")
    deleted = acme.delete("/rbac/roles/deployer")
    assert (deleted.status_code, deleted.json["status"], deleted.json["name"]) == (200, "deleted", "deployer")
    assert acme.get("/users/bob").json["roles"] == []
    gone = acme.delete("/rbac/permissions/prod-write")
    assert (gone.status_code, gone.json["status"]) == (200, "deleted")
    assert acme.delete("/rbac/permissions/prod-write").status_code == 404


def test_invalid_rules_are_refused_with_a_reason(acme: Ui) -> None:
    cases = [
        ([{"actions": ["unit.fly"], "resources": ["*"], "effect": "allow"}], "unknown action"),
        ([{"actions": ["unit.read"], "resources": ["org-acme/prod"], "effect": "allow"}], "workspace names"),
        ([{"actions": ["unit.read"], "resources": ["*"], "effect": "maybe"}], "effect"),
        ([{"actions": [], "resources": ["*"], "effect": "allow"}], "actions"),
        ([], "non-empty"),
    ]
    for rules, reason in cases:
        response = acme.post("/rbac/permissions", {"name": "p", "rules": rules})
        assert response.status_code == 400, rules
        assert reason in response.json["error"], response.json


def test_assign_and_revoke_by_email_or_subject(acme: Ui) -> None:
    join(acme, "bob")
    assigned = acme.post("/rbac/assign", {"email": "bob@example.com", "role_id": "admin"})
    assert assigned.status_code == 200
    assert (assigned.json["status"], assigned.json["roles"]) == ("assigned", ["admin", "default"])
    assert acme.post("/rbac/assign", {"subject": "bob", "role_id": "admin"}).json["status"] == "unchanged"
    revoked = acme.post("/rbac/revoke", {"subject": "bob", "email": "bob@example.com", "role_id": "default"})
    assert (revoked.status_code, revoked.json["status"], revoked.json["roles"]) == (200, "revoked", ["admin"])
    assert acme.post("/rbac/revoke", {"subject": "bob", "role_id": "default"}).json["status"] == "unchanged"
    assert acme.post("/rbac/assign", {"email": "nobody@example.com", "role_id": "admin"}).status_code == 404
    assert acme.post("/rbac/assign", {"role_id": "admin"}).status_code == 400


def test_assign_by_subject_makes_a_member(acme: Ui) -> None:
    response = acme.post("/rbac/assign", {"subject": "carol", "email": "carol@example.com", "role_id": "default"})
    assert response.status_code == 200
    assert [u["subject"] for u in acme.get("/users").json["users"]] == ["alice", "carol"]


def test_the_last_admin_keeps_the_role(acme: Ui) -> None:
    response = acme.post("/rbac/revoke", {"subject": "alice", "role_id": "admin"})
    assert response.status_code == 409
    assert "last admin" in response.json["error"]
    join(acme, "bob", "admin")
    assert acme.post("/rbac/revoke", {"subject": "alice", "role_id": "admin"}).status_code == 200


def test_rbac_users(acme: Ui) -> None:
    join(acme, "bob")
    listed = acme.get("/rbac/users")
    assert listed.status_code == 200
    assert [(u["subject"], u["email"], u["roles"]) for u in listed.json["users"]] == [
        ("alice", "alice@example.com", ["admin"]),
        ("bob", "bob@example.com", ["default"]),
    ]


def test_rbac_test_explains_the_decision(acme: Ui) -> None:
    acme.post(
        "/rbac/permissions",
        {"name": "no-prod", "rules": [{"actions": ["*"], "resources": ["prod-*"], "effect": "deny"}]},
    )
    acme.post("/rbac/permissions", PROD_WRITE)
    acme.post("/rbac/roles", {"name": "limited", "permissions": ["read", "no-prod", "prod-write"]})
    bob = join(acme, "bob", "limited")
    denied = acme.post("/rbac/test", {"email": "bob@example.com", "action": "unit.read", "resource": "prod-eu"})
    assert denied.status_code == 200
    assert denied.json["status"] == "denied"
    assert "no-prod" in denied.json["reason"]
    assert denied.json["user_roles"] == ["limited"]
    assert "no-prod" in denied.json["applicable_permissions"]
    allowed = acme.post("/rbac/test", {"email": "bob@example.com", "action": "unit.read", "resource": "dev"})
    assert (allowed.json["status"], allowed.json["applicable_permissions"]) == ("allowed", ["read"])
    outputs = acme.post("/rbac/test", {"subject": "bob", "action": "unit.read_outputs", "resource": "dev"})
    assert outputs.json["status"] == "allowed"  # unit.read implies unit.read_outputs
    own = bob.post("/rbac/test", {"action": "unit.write", "resource": "dev"})
    assert (own.status_code, own.json["status"]) == (200, "denied")
    other = bob.post("/rbac/test", {"email": "alice@example.com", "action": "unit.write", "resource": "dev"})
    assert other.status_code == 403
    assert acme.post("/rbac/test", {"action": "unit.fly", "resource": "dev"}).status_code == 400


def test_rbac_management_needs_rbac_manage(acme: Ui) -> None:
    bob = join(acme, "bob")
    for method, path, body in (
        ("GET", "/rbac/roles", None),
        ("POST", "/rbac/roles", {"name": "x"}),
        ("GET", "/rbac/permissions", None),
        ("GET", "/rbac/users", None),
        ("POST", "/rbac/assign", {"subject": "bob", "role_id": "admin"}),
        ("DELETE", "/rbac/roles/admin", None),
    ):
        response = bob.call(method, path, body)
        assert response.status_code == 403, (method, path)
    assert acme.get("/users/bob").json["roles"] == ["default"]


def test_roles_of_another_org_are_invisible(acme: Ui, ui: Ui) -> None:
    other = ui.as_user("mallory")
    other.post("/orgs/sync", {"name": "evil", "display_name": "Evil", "external_org_id": "org_evil"})
    evil = other.in_org("org_evil")
    evil_admin = next(r for r in evil.get("/rbac/roles").json["roles"] if r["name"] == "admin")
    assert acme.delete(f"/rbac/roles/{evil_admin['id']}").status_code == 404
    assert acme.post(f"/rbac/roles/{evil_admin['id']}/permissions", {"permission_id": "read"}).status_code == 404
    assert acme.post("/rbac/assign", {"subject": "alice", "role_id": evil_admin["id"]}).status_code == 404
    assert evil.in_org("org_acme").get("/rbac/roles").status_code == 404
