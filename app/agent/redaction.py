"""Removing sensitive variable values from Terraform's output before any of it leaves the agent.

Output arrives in arbitrary pieces, so a value may be split between two reads. The redactor therefore only
releases complete lines (a value never spans lines: a multi-line value is redacted line by line) and holds back
the unfinished rest; a line longer than ``max_pending`` is released early, minus a tail long enough to hold the
start of any value, so memory stays bounded without letting a value through in two halves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

MASK = b"***"
DEFAULT_MAX_PENDING = 64 * 1024


def _forms(secret: str) -> set[bytes]:
    """Each way Terraform may print ``secret``: as is, line by line, and escaped inside a quoted string."""
    forms = {secret, json.dumps(secret, ensure_ascii=False)[1:-1]}
    forms.update(secret.splitlines())
    return {form.encode() for form in forms if form and "\n" not in form and "\r" not in form}


class Redactor:
    """Replaces every form of the given secrets with ``***`` in a stream of bytes fed in pieces."""

    def __init__(self, secrets: Iterable[str], max_pending: int = DEFAULT_MAX_PENDING) -> None:
        forms: set[bytes] = set()
        for secret in secrets:
            forms |= _forms(secret)
        ordered = sorted(forms, key=len, reverse=True)  # the longest form first, so a prefix cannot win
        self._pattern = re.compile(b"|".join(re.escape(form) for form in ordered)) if ordered else None
        self._longest = len(ordered[0]) if ordered else 0
        self._max_pending = max(max_pending, 2 * self._longest)
        self._pending = b""

    def redact(self, data: bytes) -> bytes:
        """``data`` with every secret masked (for text that is complete, such as a message of the agent's own)."""
        return self._pattern.sub(MASK, data) if self._pattern is not None else data

    def feed(self, data: bytes) -> bytes:
        """The redacted output that is safe to release after ``data`` arrived; the rest is held back."""
        pending = self._pending + data
        end = pending.rfind(b"\n") + 1
        ready, self._pending = pending[:end], pending[end:]
        released = self.redact(ready)
        if len(self._pending) > self._max_pending:
            released += self._release_long_line()
        return released

    def _release_long_line(self) -> bytes:
        """Release all of an overlong unfinished line but a tail that may hold the start of a secret.

        A secret starting before ``cut`` ends within the held bytes, so every match that starts there is final.
        """
        pending, out, position = self._pending, [], 0
        cut = len(pending) - max(self._longest - 1, 0)
        for match in self._pattern.finditer(pending) if self._pattern is not None else ():
            if match.start() >= cut:
                break
            out += [pending[position : match.start()], MASK]
            position = match.end()
        cut = max(cut, position)
        out.append(pending[position:cut])
        self._pending = pending[cut:]
        return b"".join(out)

    def flush(self) -> bytes:
        """Everything still held back, redacted (the stream has ended)."""
        rest, self._pending = self._pending, b""
        return self.redact(rest)


def redact_json(document: bytes, redactor: Redactor) -> bytes:
    """A JSON document (``terraform show -json``) with every secret masked inside its strings.

    The JSON plan repeats variable values in full, sensitive ones included; masking inside strings only keeps the
    document valid whatever the secrets look like (a secret "1" must not turn numbers into ``***``).
    """
    if redactor.redact(document) == document:
        return document  # nothing to mask: the common case costs one scan

    def walk(value: object) -> object:
        if isinstance(value, str):
            return redactor.redact(value.encode()).decode()
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}  # names, not values
        return value

    return json.dumps(walk(json.loads(document)), ensure_ascii=False).encode()
