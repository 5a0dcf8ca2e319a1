"""The one strict JSON parser for what clients send: bodies, LockInfo, stored lock text."""

from __future__ import annotations

from typing import Any

import orjson

from app.core.errors import InvalidInput

# No request body of any API is more than a few levels deep; a bound far above that keeps every later walk
# over a body (marshmallow, the policy engine, serializers) well away from Python's recursion limit.
MAX_JSON_DEPTH = 64


def parse_json(raw: bytes, what: str = "request body") -> Any:
    """``raw`` parsed as strict JSON (UTF-8, no NaN, no lone surrogates, no NUL in strings, bounded nesting).

    The one JSON parser for request bodies: text that reaches a database or a lock driver can hold no NUL
    (PostgreSQL refuses it) and no lone surrogate (it cannot be encoded), so both are refused here.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _too_deep(what) from None
        raise InvalidInput(f"{what} is not valid JSON (UTF-8): {exc}") from None
    check_json_text(value, what)
    return value


def check_json_text(value: Any, what: str = "request body") -> None:
    """Raise ``InvalidInput`` when ``value`` nests deeper than ``MAX_JSON_DEPTH`` or a string in it holds NUL."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidInput(f"{what}: strings must not contain NUL characters")
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep(what)
            children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def _too_deep(what: str) -> InvalidInput:
    return InvalidInput(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
