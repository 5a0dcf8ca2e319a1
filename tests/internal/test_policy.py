"""The RBAC decision itself (pure functions): globs on names, deny wins, implied reads, the organization gate."""

from __future__ import annotations

import pytest

from app.core import policy
from app.core.errors import InvalidInput


def grant(name: str, *rules: tuple[list[str], list[str], str]) -> policy.Grant:
    return policy.Grant("role", name, tuple(policy.Rule(tuple(a), tuple(r), e) for a, r, e in rules))


READ_ALL = grant("read", (["unit.read"], ["*"], "allow"))
NO_PROD = grant("no-prod", (["*"], ["prod-*"], "deny"))
ADMIN = grant("admin", (["*"], ["*"], "allow"))
DEV_ADMIN = grant("dev-admin", (["*"], ["dev-*"], "allow"))


@pytest.mark.parametrize(
    ("grants", "action", "workspace", "allowed"),
    [
        ([READ_ALL], "unit.read", "prod", True),
        ([READ_ALL], "unit.read_outputs", "prod", True),  # implied by unit.read
        ([READ_ALL], "unit.write", "prod", False),
        ([READ_ALL, NO_PROD], "unit.read", "prod-eu", False),  # deny anywhere wins
        ([READ_ALL, NO_PROD], "unit.read", "dev", True),
        ([READ_ALL, NO_PROD], "unit.read", "Prod-eu", True),  # case-sensitive, like the names
        ([grant("g", (["unit.read"], ["app-?", "db-[ab]"], "allow"))], "unit.read", "app-1", True),
        ([grant("g", (["unit.read"], ["app-?", "db-[ab]"], "allow"))], "unit.read", "db-c", False),
        ([grant("g", (["unit.*"], ["*"], "allow"))], "unit.delete", "x", True),
        ([grant("g", (["unit.*"], ["*"], "allow"))], "rbac.manage", None, False),
        ([READ_ALL, grant("g", (["unit.read_outputs"], ["secret"], "deny"))], "unit.read", "secret", False),
        ([], "unit.read", "x", False),
        # The organization-level gate: any allow opens it, a deny on "*" closes it.
        ([DEV_ADMIN], "unit.write", None, True),
        ([DEV_ADMIN, grant("g", (["unit.write"], ["*"], "deny"))], "unit.write", None, False),
        ([READ_ALL, NO_PROD], "unit.read", None, True),
        # Organization-wide actions need an allow on "*"; a rule for some workspaces never grants them.
        ([DEV_ADMIN], "rbac.manage", None, False),
        ([DEV_ADMIN], "rbac.manage", "dev-1", False),
        ([ADMIN], "rbac.manage", None, True),
        ([ADMIN, NO_PROD], "rbac.manage", None, False),
    ],
)
def test_decide(grants: list[policy.Grant], action: str, workspace: str | None, allowed: bool) -> None:
    decision = policy.decide(grants, action, workspace)
    assert decision.allowed is allowed, decision.reason


def test_the_reason_names_the_permission() -> None:
    denied = policy.decide([READ_ALL, NO_PROD], "unit.read", "prod-eu")
    assert "no-prod" in denied.reason and denied.matched == ("no-prod",)
    nothing = policy.decide([], "unit.read", "x")
    assert "no role" in nothing.reason


def test_validate_rules_normalizes_and_refuses() -> None:
    rules = [{"actions": ["unit.read", "unit.read"], "resources": ["prod-*"], "effect": "deny"}]
    assert policy.validate_rules(rules) == [{"actions": ["unit.read"], "resources": ["prod-*"], "effect": "deny"}]
    for bad in (
        [{"actions": ["*"], "resources": ["*"], "effect": "allow", "extra": 1}],
        [{"actions": ["*"], "resources": ["a b"], "effect": "allow"}],
        [{"actions": ["*"], "resources": ["*"]}],
        ["not an object"],
    ):
        with pytest.raises(InvalidInput):
            policy.validate_rules(bad)


def test_stored_rules_that_are_malformed_raise() -> None:
    with pytest.raises(ValueError):
        policy.stored_rule({"actions": ["*"], "resources": ["*"], "effect": "maybe"})
