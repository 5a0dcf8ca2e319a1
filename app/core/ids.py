"""Identifiers of every stored object."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """A TFE-style identifier such as ``ws-3kTq9v0bX2mYc8Lp``."""
    return f"{prefix}-" + "".join(secrets.choice(_ALPHABET) for _ in range(16))
