"""Reading request bodies for every API, with the size checked before a byte is read."""

from __future__ import annotations

from typing import Any

import orjson
from flask import request

from app.core.errors import InvalidInput, PayloadTooLarge
from app.core.statefile import READ_CHUNK, StateBody

# No request body of any API is more than a few levels deep; a bound far above that keeps every later walk
# over a body (marshmallow, the policy engine, serializers) well away from Python's recursion limit.
MAX_JSON_DEPTH = 64


def check_declared_size(limit: int) -> None:
    """Refuse a body whose ``Content-Length`` already exceeds ``limit`` without reading it."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is larger than the limit of {limit} bytes")


def read_small_body(limit: int) -> bytes:
    """A small body (lock info, JSON requests) read whole, at most ``limit`` bytes."""
    check_declared_size(limit)
    try:
        data = request.stream.read(limit + 1)
    except OSError:
        raise _broken_body() from None
    if len(data) > limit:
        raise PayloadTooLarge(f"body is larger than the limit of {limit} bytes")
    return data


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


def receive_state(limit: int) -> StateBody:
    """The request body as a spooled, hashed, validated state (``Content-MD5`` checked when sent)."""
    check_declared_size(limit)
    stream = request.stream
    try:
        body = StateBody.receive(iter(lambda: stream.read(READ_CHUNK), b""), limit)
    except OSError:
        raise _broken_body() from None
    try:
        body.verify_md5(request.headers.get("Content-MD5"))
        body.validate()
    except BaseException:
        body.close()
        raise
    return body


def _too_deep(what: str) -> InvalidInput:
    return InvalidInput(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")


def _broken_body() -> InvalidInput:
    # gunicorn raises OSError subclasses (InvalidChunkSize, ChunkMissingTerminator, NoMoreData) from the body
    # stream when the chunked framing is malformed or the client stops sending mid-body.
    return InvalidInput("the request body is malformed: bad chunked encoding, or it ended before its length")
