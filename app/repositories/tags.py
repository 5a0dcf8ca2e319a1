"""Workspace tags: each a key with an optional value, one set per workspace.

The TFE API has two views of them: plain tags (``tag-names``, ``relationships/tags``) and key/value tag bindings
(``tag-bindings``, what Terraform >= 1.10 reads and writes). Here they are one thing: a plain tag is a key whose
value is empty, and ``tag-names`` lists every key, so a tag written through either view is seen by both and the
cloud block's tags strategy finds the workspaces it created, whichever view it uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import inspect

from app.core.errors import InvalidInput
from app.extensions import db
from app.models import Workspace, WorkspaceTag

KEY_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9:_.-]{0,253}[A-Za-z0-9])?$"
KEY_RULE = (
    "tags are 1-255 letters, digits, colons, periods, hyphens and underscores, starting and ending with a letter or "
    "digit (tag binding keys too)"
)
VALUE_RULE = "tag values are at most 255 letters, digits, spaces and . _ : / = + @ -"
MAX_TAGS = 100
_KEY = re.compile(KEY_PATTERN)
_VALUE = re.compile(r"^[A-Za-z0-9 ._:/=+@-]{0,255}$")


def check_key(key: Any) -> str:
    """``key`` when it is a valid tag key; ``InvalidInput`` naming the rule otherwise."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidInput(f"invalid tag {str(key)[:100]!r}: {KEY_RULE}")
    return key


def check_value(value: Any) -> str:
    """``value`` (``None`` is empty) when it is a valid tag value; ``InvalidInput`` otherwise."""
    if value is None:
        return ""
    if not isinstance(value, str) or not _VALUE.match(value):
        raise InvalidInput(f"invalid tag value {str(value)[:100]!r}: {VALUE_RULE}")
    return value


def tag_keys(workspace: Workspace) -> list[str]:
    """The workspace's tag keys in order: from its tags when loaded (a listing page loads its page's at once), else
    in one query of the keys alone. Loading the collection of one workspace cost a sixth of a TFC workspace read."""
    if "tags" not in inspect(workspace).unloaded:
        return [tag.key for tag in workspace.tags]
    return list(db.session.scalars(_KEYS_OF_WORKSPACE, {"workspace_id": workspace.id}))


_KEYS_OF_WORKSPACE = (
    db.select(WorkspaceTag.key)
    .where(WorkspaceTag.workspace_id == db.bindparam("workspace_id"))
    .order_by(WorkspaceTag.key)
)


def tags_of(workspace: Workspace) -> dict[str, str]:
    """The workspace's tags, key to value ('' for a plain tag), by key."""
    return {tag.key: tag.value for tag in workspace.tags}


def with_bindings(current: Mapping[str, str], bindings: Mapping[str, str]) -> dict[str, str]:
    """``current`` with ``bindings`` added or their values changed (PATCH tag-bindings)."""
    return {**current, **bindings}


def with_plain_tags(current: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    """``current`` with plain tags ``keys`` added; a key that already has a value keeps it."""
    return {**{key: "" for key in keys}, **current}


def without(current: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    """``current`` without ``keys``."""
    doomed = set(keys)
    return {key: value for key, value in current.items() if key not in doomed}


def only_keys(current: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    """Exactly ``keys`` as tags, keeping the value of those already present (``tag-names`` on update)."""
    return {key: current.get(key, "") for key in keys}


def replace_tags(workspace: Workspace, tags: Mapping[str, str]) -> bool:
    """Make ``tags`` the workspace's tags in the current transaction (no commit); returns whether they changed."""
    wanted = {check_key(key): check_value(value) for key, value in tags.items()}
    if len(wanted) > MAX_TAGS:
        raise InvalidInput(f"a workspace has at most {MAX_TAGS} tags")
    if wanted == tags_of(workspace):
        return False
    by_key = {tag.key: tag for tag in workspace.tags}
    workspace.tags = [by_key.get(key) or WorkspaceTag(key=key) for key in sorted(wanted)]
    for tag in workspace.tags:
        tag.value = wanted[tag.key]
    return True


def tagged(keys: Iterable[str] = (), bindings: Iterable[tuple[str, str]] = ()) -> list[Any]:
    """Conditions on ``Workspace`` for a search: each key present (any value), each binding present.

    A binding with an empty value asks for the key whatever its value, as a plain tag filter does.
    """
    conditions = []
    for key in keys:
        conditions.append(_has(WorkspaceTag.key == key))
    for key, value in bindings:
        match = WorkspaceTag.key == key if value == "" else (WorkspaceTag.key == key) & (WorkspaceTag.value == value)
        conditions.append(_has(match))
    return conditions


def _has(match: Any) -> Any:
    return db.select(WorkspaceTag.workspace_id).where(WorkspaceTag.workspace_id == Workspace.id, match).exists()
