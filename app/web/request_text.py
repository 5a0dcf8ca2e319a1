"""Text no API accepts: NUL characters in the path, the query string or a header.

PostgreSQL cannot store NUL in text and its driver raises on it mid-query, so a NUL anywhere a view might pass
on (a name, an id, ``?org=``, ``X-User-ID``) is refused once here, before any view runs, as a 400 in the API's
own error shape. Bodies are checked by ``app.core.json_input.parse_json``.
"""

from __future__ import annotations

from flask import request

from app.core.errors import InvalidInput


def refuse_nul_characters() -> None:
    """Raise ``InvalidInput`` when the path, a query argument or a header value contains NUL."""
    if "\x00" in request.path:
        raise InvalidInput("the request path contains a NUL character")
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            raise InvalidInput(f"query argument {key.replace(chr(0), '?')[:64]!r} contains a NUL character")
    for name, value in request.headers.items():
        if "\x00" in value:
            raise InvalidInput(f"header {name[:64]} contains a NUL character")
