"""JSON:API documents as the TFE clients read them: resources, collections with paging meta, request bodies."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Response, request

from app.core.errors import InvalidInput
from app.core.json_input import parse_json
from app.web.paging import Page, parse_page
from app.web.request_body import read_small_body

MEDIA_TYPE = "application/vnd.api+json"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
SMALL_BODY_LIMIT = 1024 * 1024

Resource = dict[str, Any]


def resource(
    type_: str,
    id_: str,
    attributes: Mapping[str, Any],
    relationships: Mapping[str, Any] | None = None,
    links: Mapping[str, str] | None = None,
) -> Resource:
    """One resource object."""
    found: Resource = {"id": id_, "type": type_, "attributes": dict(attributes)}
    if relationships is not None:
        found["relationships"] = dict(relationships)
    if links is not None:
        found["links"] = dict(links)
    return found


def ref(type_: str, id_: str | None) -> dict[str, Any]:
    """A relationship object: ``{"data": {"id","type"}}``, or ``{"data": null}``."""
    return {"data": {"id": id_, "type": type_} if id_ else None}


def rfc3339(moment: datetime | None) -> str | None:
    """A stored naive-UTC time as RFC 3339 (``2024-05-01T12:00:00.123Z``)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def respond(payload: Mapping[str, Any] | None, status: int = 200) -> Response:
    """A JSON:API response (``None`` gives an empty body, for 204)."""
    body = "" if payload is None else json.dumps(payload, separators=(",", ":"))
    return Response(body, status=status, mimetype=MEDIA_TYPE)


def document(data: Resource | None, status: int = 200) -> Response:
    """``{"data": ...}``."""
    return respond({"data": data}, status)


def requested_page() -> Page:
    """The page asked for: number from 1, size 20 by default and at most 100 (bad values fall back, as TFE's)."""
    return parse_page(
        request.args.get("page[number]"),
        request.args.get("page[size]"),
        names=("page[number]", "page[size]"),
        default_size=DEFAULT_PAGE_SIZE,
        max_size=MAX_PAGE_SIZE,
        lenient=True,
    )


def pagination(page: Page, total: int) -> dict[str, Any]:
    """``meta.pagination`` in TFE's shape."""
    pages = max(1, math.ceil(total / page.size))
    return {
        "current-page": page.number,
        "page-size": page.size,
        "prev-page": page.number - 1 if page.number > 1 else None,
        "next-page": page.number + 1 if page.number < pages else None,
        "total-pages": pages,
        "total-count": total,
    }


def collection(items: Sequence[Resource], page: Page, total: int) -> Response:
    """A list document with ``meta.pagination``."""
    return respond({"data": list(items), "meta": {"pagination": pagination(page, total)}})


def paginate(items: Sequence[Any], page: Page) -> list[Any]:
    """The slice of an in-memory list that ``page`` covers."""
    return list(items[page.offset : page.offset + page.size])


def request_body(limit: int = SMALL_BODY_LIMIT) -> dict[str, Any]:
    """The JSON body as an object; an empty body or ``null`` (terrasnek sends it) is ``{}``."""
    raw = read_small_body(limit)
    if not raw.strip():
        return {}
    body = parse_json(raw)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    return body


def data_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body["data"]`` as an object (``{}`` when absent)."""
    data = body.get("data")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput('"data" must be a JSON:API resource object')
    return data


def attributes_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body["data"]["attributes"]`` as an object (``{}`` when absent)."""
    attributes = data_of(body).get("attributes")
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise InvalidInput('"data.attributes" must be an object')
    return attributes
