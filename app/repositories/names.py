"""The naming rule Terraform clients enforce for organizations and workspaces, and the shape of our ids.

Lookups accept a name or an id in the same place (``/workspaces/<ref>``, ``X-Org-ID``, ``/units/<ref>``), so a name
must never be able to look like an id: such names are refused, and a reference with the shape of an id is only
ever looked up as an id.
"""

from __future__ import annotations

import re

from app.core.errors import InvalidInput

NAME_RULE = "1-90 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"
# \Z, not $: "$" also matches before a trailing newline, which would let "prod\n" pass as a name.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,89}\Z")

# Every id this server hands out is "<prefix>-" and 16 letters or digits (``models.new_id``); the TFE id kinds that
# API paths take are listed too. UUIDs are the ids of the older Statesman's units.
ID_PREFIXES = ("org", "user", "ws", "sv", "at", "role", "perm", "prj", "run", "cv", "plan", "apply", "apool", "var")
ID_LENGTH = 16
_ID = re.compile(rf"^(?:{'|'.join(ID_PREFIXES)})-[A-Za-z0-9]{{{ID_LENGTH}}}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def looks_like_id(ref: str, prefix: str | None = None) -> bool:
    """True when ``ref`` has the shape of one of our ids (of kind ``prefix`` when given) or of a UUID."""
    if prefix is not None:
        return ref.startswith(prefix + "-") and bool(_ID.match(ref))
    return bool(_ID.match(ref) or _UUID.match(ref))


def is_valid_name(name: str) -> bool:
    """True when ``name`` follows the rule and cannot be mistaken for an id."""
    return bool(_NAME.match(name)) and not looks_like_id(name)


def check_name(kind: str, name: str) -> str:
    """Return ``name`` or raise ``InvalidInput`` naming the rule it breaks."""
    if not _NAME.match(name):
        raise InvalidInput(f"invalid {kind} name {name[:100]!r}: names are {NAME_RULE}")
    if looks_like_id(name):
        raise InvalidInput(
            f"invalid {kind} name {name!r}: it has the shape of an id ({'/'.join(ID_PREFIXES)} followed by '-' and "
            f"{ID_LENGTH} letters or digits, or a UUID), and requests may name things by id; choose another name"
        )
    return name
