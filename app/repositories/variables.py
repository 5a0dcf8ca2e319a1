"""Workspace variables: what the runs of a workspace receive as Terraform variables or as environment variables.

Every value is sealed by the KMS driver (bound to the variable's id), so a database dump shows none. A
``sensitive`` value is write-only: no API ever answers with it, only a run reads it (``revealed_value``), and a
sensitive variable cannot be made non-sensitive, only replaced. Changes need ``unit.write`` on the workspace and
are audited without their values.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError

from app.core import policy
from app.core.clock import utcnow
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.ids import new_id
from app.drivers.kms.base import seal, unseal
from app.extensions import db, drivers
from app.models import Workspace, WorkspaceVariable
from app.repositories.audit import record_event
from app.repositories.guard import WorkspaceGuard

CATEGORIES = ("terraform", "env")
MAX_KEY = 128
MAX_VALUE_BYTES = 256 * 1024
MAX_DESCRIPTION = 512
MAX_VARIABLES = 500
# Terraform variable names may hold hyphens; environment variable names are what a POSIX shell accepts.
_KEY_RULES = {
    "terraform": (re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*\Z"), "letters, digits, '_' and '-', not starting with a digit"),
    "env": (re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z"), "letters, digits and '_', not starting with a digit"),
}


def list_variables(workspace: Workspace) -> list[WorkspaceVariable]:
    """The workspace's variables by category, then key."""
    return list(
        db.session.scalars(
            db.select(WorkspaceVariable)
            .where(WorkspaceVariable.workspace_id == workspace.id)
            .order_by(WorkspaceVariable.category, WorkspaceVariable.key)
        )
    )


def get_variable(workspace: Workspace, variable_id: str) -> WorkspaceVariable:
    """The workspace's variable by id; ``NotFound`` for a missing one or another workspace's."""
    found = db.session.get(WorkspaceVariable, variable_id)
    if found is None or found.workspace_id != workspace.id:
        raise NotFound(f"variable {variable_id!r} not found in workspace {workspace.name!r}")
    return found


def shown_value(variable: WorkspaceVariable) -> str | None:
    """The value an API may answer with: None for a sensitive variable."""
    return None if variable.sensitive else revealed_value(variable)


def revealed_value(variable: WorkspaceVariable) -> str:
    """The plain value, sensitive or not (for the run that hands it to Terraform, never for an API answer)."""
    return unseal(drivers().kms, variable.sealed_value, _context(variable.id)).decode()


def create_variable(
    guard: WorkspaceGuard,
    *,
    key: str,
    value: str,
    category: str,
    hcl: bool = False,
    sensitive: bool = False,
    description: str = "",
) -> WorkspaceVariable:
    """Add a variable (``Conflict`` when the key exists in that category)."""
    guard.require(policy.WRITE)
    workspace = guard.workspace
    _check(key, value, category, description)
    count = db.session.scalar(
        db.select(db.func.count()).select_from(WorkspaceVariable).where(WorkspaceVariable.workspace_id == workspace.id)
    )
    if (count or 0) >= MAX_VARIABLES:
        raise InvalidInput(f"a workspace holds at most {MAX_VARIABLES} variables")
    now = utcnow()
    variable = WorkspaceVariable(
        id=new_id("var"),
        workspace_id=workspace.id,
        key=key,
        category=category,
        hcl=hcl,
        sensitive=sensitive,
        description=description,
        version=1,
        created_at=now,
        updated_at=now,
    )
    _seal(variable, value)
    db.session.add(variable)
    record_event("variable.create", "ok", guard.actor, workspace=workspace, commit=False, **_described(variable))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"{category} variable {key!r} already exists in workspace {workspace.name!r}") from None
    return variable


def update_variable(guard: WorkspaceGuard, variable: WorkspaceVariable, **changes: Any) -> WorkspaceVariable:
    """Change the given fields (``key``, ``value``, ``category``, ``hcl``, ``sensitive``, ``description``)."""
    guard.require(policy.WRITE)
    unknown = set(changes) - {"key", "value", "category", "hcl", "sensitive", "description"}
    if unknown:
        raise ValueError(f"unknown variable fields {sorted(unknown)}")
    if variable.sensitive and changes.get("sensitive") is False:
        raise InvalidInput("a sensitive variable cannot be made non-sensitive; delete it and create it again")
    key, category = changes.get("key", variable.key), changes.get("category", variable.category)
    description = changes.get("description", variable.description)
    value = changes.get("value")
    _check(key, value if value is not None else "", category, description)
    variable.key, variable.category, variable.description = key, category, description
    variable.hcl = changes.get("hcl", variable.hcl)
    variable.sensitive = changes.get("sensitive", variable.sensitive)
    if value is not None:
        _seal(variable, value)
    variable.version += 1
    variable.updated_at = utcnow()
    record_event(
        "variable.update",
        "ok",
        guard.actor,
        workspace=guard.workspace,
        commit=False,
        changed=sorted(changes),
        **_described(variable),
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"{category} variable {key!r} already exists in workspace {guard.workspace.name!r}") from None
    return variable


def delete_variable(guard: WorkspaceGuard, variable: WorkspaceVariable) -> None:
    """Remove a variable."""
    guard.require(policy.WRITE)
    record_event("variable.delete", "ok", guard.actor, workspace=guard.workspace, commit=False, **_described(variable))
    db.session.delete(variable)
    db.session.commit()


def check_run_variable(key: str, value: str) -> None:
    """Raise ``InvalidInput`` unless ``key``/``value`` make a valid Terraform variable (a run's own variables)."""
    _check(key, value, "terraform", "")


def _check(key: str, value: str, category: str, description: str) -> None:
    if category not in CATEGORIES:
        raise InvalidInput(f'category must be "terraform" or "env", not {category!r}')
    pattern, rule = _KEY_RULES[category]
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY or not pattern.match(key):
        raise InvalidInput(f"invalid {category} variable key {str(key)[:MAX_KEY]!r}: 1-{MAX_KEY} {rule}")
    if not isinstance(value, str) or len(value.encode()) > MAX_VALUE_BYTES:
        raise InvalidInput(f"a variable value is a string of at most {MAX_VALUE_BYTES} bytes")
    if "\x00" in value:
        raise InvalidInput("a variable value must not contain NUL characters")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"a variable description is at most {MAX_DESCRIPTION} characters")


def seal_value(variable_id: str, value: str) -> tuple[bytes, str]:
    """``value`` sealed under the KMS driver's current key for the variable: the column values and the key id."""
    kms = drivers().kms
    return seal(kms, value.encode(), _context(variable_id)), kms.key_id


def reseal_variables() -> int:
    """Seal every value under the KMS driver's current key (``flask kms rotate``); returns how many moved."""
    key_id = drivers().kms.key_id
    moved = 0
    for variable in db.session.scalars(db.select(WorkspaceVariable).where(WorkspaceVariable.kms_key_id != key_id)):
        _seal(variable, revealed_value(variable))
        moved += 1
    db.session.commit()
    return moved


def sealed_key_ids() -> set[str]:
    """Every key id a variable value is sealed under."""
    return set(db.session.scalars(db.select(WorkspaceVariable.kms_key_id).distinct()))


def _seal(variable: WorkspaceVariable, value: str) -> None:
    variable.sealed_value, variable.kms_key_id = seal_value(variable.id, value)


def _context(variable_id: str) -> bytes:
    # Binds the ciphertext to its variable: a sealed value copied onto another row does not decrypt there.
    return f"variable:{variable_id}".encode()


def _described(variable: WorkspaceVariable) -> dict[str, Any]:
    """What an audit event says about a variable: never its value."""
    return {
        "variable_id": variable.id,
        "key": variable.key,
        "category": variable.category,
        "sensitive": variable.sensitive,
    }
