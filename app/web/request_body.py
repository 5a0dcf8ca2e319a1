"""Reading request bodies for every API, with the size checked before a byte is read."""

from __future__ import annotations

from collections.abc import Iterator

from flask import request

from app.core.errors import InvalidInput, PayloadTooLarge
from app.core.statefile import READ_CHUNK, StateBody


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


def _broken_body() -> InvalidInput:
    # gunicorn raises OSError subclasses (InvalidChunkSize, ChunkMissingTerminator, NoMoreData) from the body
    # stream when the chunked framing is malformed or the client stops sending mid-body.
    return InvalidInput("the request body is malformed: bad chunked encoding, or it ended before its length")


def request_chunks(limit: int) -> Iterator[bytes]:
    """The request body as chunks, after refusing a declared size over ``limit`` (the reader bounds the rest)."""
    check_declared_size(limit)
    stream = request.stream
    while True:
        try:
            chunk = stream.read(READ_CHUNK)
        except OSError:
            raise _broken_body() from None
        if not chunk:
            return
        yield chunk
