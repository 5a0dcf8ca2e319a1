"""RBAC rules: the action vocabulary, rule validation and the decision (pure functions, no I/O).

A permission is a list of rules ``{"actions": [...], "resources": [...], "effect": "allow"|"deny"}``. Resources are
workspace **names** with fnmatch-style globs (``*``, ``?``, ``[...]``), matched case-sensitively; never ids, so a
rule written as ``prod-*`` means the same thing through every API. A matching ``deny`` anywhere wins; without a
matching ``allow`` the answer is no.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from app.core.errors import InvalidInput

READ = "unit.read"
READ_OUTPUTS = "unit.read_outputs"
WRITE = "unit.write"
LOCK = "unit.lock"
DELETE = "unit.delete"
MANAGE = "rbac.manage"
ALL = "*"
ACTIONS = (READ, READ_OUTPUTS, WRITE, LOCK, DELETE, MANAGE)
# Actions about the organization itself: only a rule whose resources cover every workspace ("*") grants them, so
# "everything on dev-*" cannot be turned into the right to hand out more.
ORG_WIDE_ACTIONS = frozenset({MANAGE})
EFFECTS = ("allow", "deny")
MAX_RULES = 100
MAX_PATTERNS = 100

_RESOURCE = re.compile(r"^[A-Za-z0-9._\-*?\[\]!]{1,90}$")


@dataclass(frozen=True)
class Rule:
    """One validated rule."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    effect: str


@dataclass(frozen=True)
class Grant:
    """The rules of one permission, reached through one role of the user."""

    role: str
    permission: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Decision:
    """The answer, why, and the permissions whose rules matched."""

    allowed: bool
    reason: str
    matched: tuple[str, ...] = ()


def validate_rules(raw: Any) -> list[dict[str, Any]]:
    """The rules in their stored form; raises ``InvalidInput`` naming the first problem."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput('rules must be a non-empty list of {"actions","resources","effect"} objects')
    if len(raw) > MAX_RULES:
        raise InvalidInput(f"a permission holds at most {MAX_RULES} rules")
    return [_validate_rule(index, rule) for index, rule in enumerate(raw)]


def _validate_rule(index: int, rule: Any) -> dict[str, Any]:
    where = f"rule {index}"
    if not isinstance(rule, Mapping):
        raise InvalidInput(f'{where}: must be an object with "actions", "resources" and "effect"')
    unknown = set(rule) - {"actions", "resources", "effect"}
    if unknown:
        raise InvalidInput(f"{where}: unknown fields {sorted(unknown)}")
    effect = rule.get("effect")
    if effect not in EFFECTS:
        raise InvalidInput(f'{where}: effect must be "allow" or "deny"')
    actions = _string_list(where, "actions", rule.get("actions"))
    for action in actions:
        if not (action in ACTIONS or any(fnmatchcase(known, action) for known in ACTIONS)):
            raise InvalidInput(f'{where}: unknown action {action!r}; actions are {", ".join(ACTIONS)} or "*"')
    resources = _string_list(where, "resources", rule.get("resources"))
    for resource in resources:
        if "/" in resource:
            raise InvalidInput(
                f"{where}: resource {resource!r}: resources are workspace names (globs such as "
                '"prod-*"), without an organization prefix'
            )
        if not _RESOURCE.match(resource):
            raise InvalidInput(f"{where}: resource {resource!r} is not a workspace name or name pattern")
    return {"actions": actions, "resources": resources, "effect": effect}


def _string_list(where: str, field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f"{where}: {field} must be a non-empty list of strings")
    if len(value) > MAX_PATTERNS:
        raise InvalidInput(f"{where}: at most {MAX_PATTERNS} {field}")
    return list(dict.fromkeys(value))


def stored_rule(raw: Any) -> Rule:
    """A rule read back from the database; raises ``ValueError`` when it is malformed (callers fail closed)."""
    if not isinstance(raw, Mapping):
        raise ValueError("rule is not an object")
    actions, resources, effect = raw.get("actions"), raw.get("resources"), raw.get("effect")
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise ValueError("rule actions are not a list of strings")
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise ValueError("rule resources are not a list of strings")
    if effect not in EFFECTS:
        raise ValueError("rule effect is neither allow nor deny")
    return Rule(tuple(actions), tuple(resources), effect)


def decide(grants: Iterable[Grant], action: str, workspace_name: str | None) -> Decision:
    """May ``action`` be done on ``workspace_name``?

    ``workspace_name=None`` is the organization-level gate ("on some workspace of the organization"): any allow
    for the action opens it, a deny on ``*`` closes it; the check on the actual workspace follows. Organization-wide
    actions (``rbac.manage``) need an allow on ``*`` and are closed by any deny.
    """
    grants = list(grants)
    allows: list[str] = []
    denies: list[str] = []
    for grant in grants:
        for rule in grant.rules:
            if _covers_action(rule, action) and _applies(rule, action, workspace_name):
                (denies if rule.effect == "deny" else allows).append(grant.permission)
    target = f"{action} on " + (f"workspace {workspace_name!r}" if workspace_name is not None else "this organization")
    if denies:
        return Decision(False, f"{target} is denied by permission {denies[0]!r}", tuple(dict.fromkeys(denies)))
    if allows:
        return Decision(True, f"{target} is allowed by permission {allows[0]!r}", tuple(dict.fromkeys(allows)))
    if not grants:
        return Decision(False, f"{target} is denied: the user has no role with permissions in this organization")
    return Decision(False, f"{target} is denied: no rule of the user's roles allows it")


def allows_everywhere(grants: Iterable[Grant], action: str) -> bool:
    """True when ``action`` is allowed on every workspace name: an allow on ``*`` and no deny that could apply."""
    rules = [rule for grant in grants for rule in grant.rules if _covers_action(rule, action)]
    if any(rule.effect == "deny" for rule in rules):
        return False
    return any(any(_everywhere(p) for p in rule.resources) for rule in rules)


def _covers_action(rule: Rule, action: str) -> bool:
    for pattern in rule.actions:
        if fnmatchcase(action, pattern):
            return True
        if action == READ_OUTPUTS and fnmatchcase(READ, pattern):
            return True  # reading a state includes reading its outputs
        if rule.effect == "deny" and action == READ and fnmatchcase(READ_OUTPUTS, pattern):
            return True  # a full read would reveal the outputs a deny withholds
    return False


def _everywhere(pattern: str) -> bool:
    return bool(pattern) and set(pattern) == {"*"}


def _applies(rule: Rule, action: str, workspace_name: str | None) -> bool:
    covers_all = any(_everywhere(p) for p in rule.resources)
    if action in ORG_WIDE_ACTIONS:
        return covers_all if rule.effect == "allow" else True
    if workspace_name is None:
        return True if rule.effect == "allow" else covers_all
    return any(fnmatchcase(workspace_name, pattern) for pattern in rule.resources)
