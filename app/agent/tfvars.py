"""A job's Terraform variables as the ``.auto.tfvars`` file Terraform loads after the configuration's own ones.

A file rather than ``-var`` flags: values never appear in a process listing, and Terraform only warns (instead of
failing) about a value for a variable the configuration does not declare, as Terraform Cloud does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Loaded last of the *.auto.tfvars files (they load in lexical order), so these values win over the archive's.
TFVARS_FILE = "zzz_statesman.auto.tfvars"

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*\Z")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True)
class Variable:
    """One variable of a job, as the agent API sends it."""

    key: str
    value: str
    category: str = "terraform"
    hcl: bool = False
    sensitive: bool = False


class InvalidVariable(ValueError):
    """A variable the agent cannot hand to Terraform (its message names the key, never the value)."""


def hcl_string(value: str) -> str:
    """``value`` as a quoted HCL string that Terraform reads back as exactly ``value`` (no template expansion)."""
    out = ['"']
    for index, char in enumerate(value):
        following = value[index + 1 : index + 2]
        if char in "$%" and following == "{":
            out.append(char * 2)  # "$${" and "%%{" are HCL's escapes for a literal "${" and "%{"
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def render_tfvars(variables: Iterable[Variable]) -> str:
    """The file's text: HCL values verbatim, every other value a quoted string; one assignment per key."""
    lines = []
    seen: set[str] = set()
    for variable in variables:
        if variable.category != "terraform":
            continue
        if not _KEY.match(variable.key):
            raise InvalidVariable(f"{variable.key[:128]!r} is not a valid Terraform variable name")
        if variable.key in seen:
            raise InvalidVariable(f"Terraform variable {variable.key!r} is given twice")
        seen.add(variable.key)
        value = variable.value if variable.hcl else hcl_string(variable.value)
        # A newline after the value: an HCL heredoc must end with one.
        lines.append(f"{variable.key} = {value}\n")
    return "".join(lines)
