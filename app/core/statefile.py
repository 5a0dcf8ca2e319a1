"""Intake of a state document: bounded, hashed while it streams, validated without loading it whole.

Every API hands the body it received to ``StateBody``; the bytes kept are exactly the bytes sent (no
re-serialisation). Bodies are spooled to a temporary file past a few megabytes, so a 100 MB state costs
little memory, and parsed as a stream of JSON events to find the serial, lineage and outputs.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import ijson
import orjson

from app.core.errors import InvalidInput, PayloadTooLarge

READ_CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 8 * 1024 * 1024


@dataclass(frozen=True)
class StateSummary:
    """What the server needs to know about a state without keeping it parsed."""

    serial: int
    lineage: str
    terraform_version: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    resource_count: int = 0


def spool_body(chunks: Iterable[bytes], limit: int, *, too_large: str, empty: str) -> tuple[IO[bytes], int, bytes, str]:
    """A received body in a spooled file (rewound; the caller closes it), its size, MD5 digest and SHA-256 hex.

    Raises ``PayloadTooLarge(too_large)`` past ``limit`` bytes (before keeping more) and ``InvalidInput(empty)``.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - handed to the caller
    md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(too_large)
            md5.update(chunk)
            sha256.update(chunk)
            spool.write(chunk)
        if size == 0:
            raise InvalidInput(empty)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size, md5.digest(), sha256.hexdigest()


class StateBody:
    """A received state: spooled bytes, their digests and size; ``summary`` is filled by ``validate``."""

    def __init__(self, spool: IO[bytes], size: int, md5: bytes, sha256: str) -> None:
        self._spool = spool
        self.size = size
        self.md5_digest = md5
        self.sha256 = sha256
        self.summary: StateSummary | None = None

    @property
    def md5_hex(self) -> str:
        return self.md5_digest.hex()

    @property
    def md5_base64(self) -> str:
        return base64.b64encode(self.md5_digest).decode()

    @classmethod
    def receive(cls, chunks: Iterable[bytes], limit: int) -> StateBody:
        """Spool and hash ``chunks``; raises ``PayloadTooLarge`` past ``limit`` bytes and ``InvalidInput`` if empty."""
        spool, size, md5, sha256 = spool_body(
            chunks,
            limit,
            too_large=f"state is larger than the limit of {limit} bytes (MAX_STATE_SIZE)",
            empty="request body is empty: expected a Terraform state (a JSON object)",
        )
        return cls(spool, size, md5, sha256)

    @classmethod
    def from_bytes(cls, data: bytes, limit: int) -> StateBody:
        """A body already in memory (inline TFC uploads, rollbacks)."""
        return cls.receive([data], limit)

    def verify_md5(self, content_md5: str | None) -> None:
        """Check a ``Content-MD5`` header (base64) when one was sent; mismatch is ``InvalidInput``."""
        if content_md5 and content_md5.strip() != self.md5_base64:
            raise InvalidInput("Content-MD5 does not match the body: the state was corrupted in transit")

    def validate(self) -> StateSummary:
        """Parse the whole document once; raises ``InvalidInput`` unless it is a Terraform state object."""
        if self.size <= SPOOL_IN_MEMORY:
            # Small enough to hold parsed: orjson (C) is several times faster than an event stream in Python.
            self.summary = summarize_bytes(self.read())
        else:
            self._spool.seek(0)
            self.summary = summarize(self._spool)
        return self.summary

    def chunks(self) -> Iterator[bytes]:
        """The exact bytes received, from the start."""
        self._spool.seek(0)
        while chunk := self._spool.read(READ_CHUNK):
            yield chunk

    def read(self) -> bytes:
        """All bytes at once (small bodies only)."""
        return b"".join(self.chunks())

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> StateBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def summarize_bytes(data: bytes) -> StateSummary:
    """Like ``summarize`` for a document held in memory."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"state is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(document, dict):
        raise InvalidInput("state must be a JSON object")
    resources = document.get("resources")
    managed = (
        sum(1 for r in resources if isinstance(r, dict) and r.get("mode") == "managed")
        if isinstance(resources, list)
        else 0
    )
    found = {key: document[key] for key in ("serial", "lineage", "terraform_version") if key in document}
    found.update(resource_count=managed, outputs=_output_summary(document.get("outputs")))
    return _summary(found)


def summarize(stream: IO[bytes]) -> StateSummary:
    """Serial, lineage, outputs and managed resource count from a JSON stream; ``InvalidInput`` when malformed."""
    found: dict[str, Any] = {"resource_count": 0, "outputs": {}}
    try:
        events = ijson.parse(stream, use_float=True)
        first = next(events, None)
        if first is None or first[1] != "start_map":
            raise InvalidInput("state must be a JSON object")
        for prefix, event, value in events:
            _collect(found, prefix, event, value, events)
    except ijson.JSONError as exc:
        raise InvalidInput(f"state is not valid JSON: {str(exc)[:200]}") from None
    except UnicodeDecodeError:
        raise InvalidInput("state is not valid UTF-8 JSON") from None
    found["outputs"] = found["outputs"] if isinstance(found["outputs"], dict) else {}
    return _summary(found)


def _summary(found: dict[str, Any]) -> StateSummary:
    serial = found.get("serial")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise InvalidInput('state must have a non-negative integer "serial"')
    lineage = found.get("lineage", "")
    if not isinstance(lineage, str):
        raise InvalidInput('state "lineage" must be a string')
    version = found.get("terraform_version")
    version = version if isinstance(version, str) and len(version) <= 40 else None
    return StateSummary(serial, lineage, version, found["outputs"], found["resource_count"])


def _collect(found: dict[str, Any], prefix: str, event: str, value: Any, events: Iterator[Any]) -> None:
    if prefix in ("serial", "lineage", "terraform_version"):
        if event in ("number", "string", "boolean", "null"):
            found[prefix] = value
        elif event in ("start_map", "start_array"):
            found[prefix] = [value]  # a container where a scalar belongs: refused by _summary
    elif prefix == "resources.item.mode" and value == "managed":
        found["resource_count"] += 1
    elif prefix == "outputs" and event == "start_map":
        found["outputs"] = _output_summary(_build_object(events, prefix))


def _build_object(events: Iterator[Any], prefix: str) -> Any:
    """Consume the events of one object (whose ``start_map`` was just read) and return it built."""
    builder = ijson.ObjectBuilder()
    builder.event("start_map", None)
    for inner_prefix, event, value in events:
        if inner_prefix == prefix and event == "end_map":
            builder.event(event, value)
            return builder.value
        builder.event(event, value)
    raise InvalidInput('state is not valid JSON: document ends inside "outputs"')


def _output_summary(outputs: Any) -> dict[str, Any]:
    """Names, types and sensitivity of outputs: values stay in the (encrypted) state, never in SQL."""
    if not isinstance(outputs, dict):
        return {}
    return {
        name: {"type": spec.get("type"), "sensitive": bool(spec.get("sensitive", False))}
        for name, spec in outputs.items()
        if isinstance(spec, dict)
    }
