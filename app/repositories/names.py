"""The naming rule Terraform clients enforce for organizations and workspaces."""

from __future__ import annotations

import re

from app.errors import InvalidInput

NAME_RULE = "1-90 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,89}$")


def is_valid_name(name: str) -> bool:
    """True when ``name`` follows the rule."""
    return bool(_NAME.match(name))


def check_name(kind: str, name: str) -> str:
    """Return ``name`` or raise ``InvalidInput`` naming the rule."""
    if not is_valid_name(name):
        raise InvalidInput(f"invalid {kind} name {name[:100]!r}: names are {NAME_RULE}")
    return name
