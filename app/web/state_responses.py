"""HTTP responses carrying a stored state, shared by every API that hands one out."""

from __future__ import annotations

import base64
import hashlib
from itertools import chain

from flask import Response

from app.models import StateVersion
from app.repositories.guard import WorkspaceGuard
from app.repositories.state_versions import (
    JSON_STATE,
    open_copy,
    open_version,
    outputs_document,
    readable_current_version,
)


def current_state_response(guard: WorkspaceGuard) -> Response:
    """The workspace's current state as the caller may read it: all of it, or its outputs only."""
    version, full = readable_current_version(guard)
    return state_response(version) if full else outputs_state_response(version)


def state_response(version: StateVersion) -> Response:
    """The exact bytes of ``version``, streamed, with ``Content-MD5`` and an ``ETag``."""
    stream = open_version(version)
    first = next(stream, b"")  # decrypt the first segment now, so a key problem is an error status, not a cut body
    return Response(
        chain([first], stream),
        status=200,
        mimetype="application/json",
        headers={
            "Content-Length": str(version.size),
            "Content-MD5": base64.b64encode(bytes.fromhex(version.md5)).decode(),
            "ETag": f'"{version.sha256}"',
        },
    )


def json_state_response(version: StateVersion) -> Response:
    """The JSON copy of ``version`` Terraform uploaded beside its state, streamed (the caller checked it has one)."""
    stream = open_copy(version, JSON_STATE)
    first = next(stream, b"")
    return Response(
        chain([first], stream),
        status=200,
        mimetype="application/json",
        headers={"Content-Length": str(version.json_state_size), "ETag": f'"{version.json_state_sha256}"'},
    )


def outputs_state_response(version: StateVersion) -> Response:
    """A state with the real serial, lineage and outputs but no resources (for outputs-only callers)."""
    document = outputs_document(version)
    digest = hashlib.md5(document, usedforsecurity=False).digest()
    return Response(
        document, status=200, mimetype="application/json", headers={"Content-MD5": base64.b64encode(digest).decode()}
    )
