"""Malformed input to the TFC API gets a 4xx JSON:API error document, never a 500 or 503."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tfc_api.conftest import MEDIA_TYPE, Api, assert_error

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"data": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}"


def raw(api: Api, method: str, path: str, body: bytes) -> Any:
    return api.client.open(api.url(path), method=method, data=body, headers=api.headers())


def test_nul_bytes_in_paths_are_400(api: Api, workspace: dict[str, Any]) -> None:
    for path in (
        "organizations/%00",
        "organizations/acme%00",
        "organizations/%00/workspaces",
        "organizations/acme/workspaces/%00",
        "organizations/%00/projects",
        "workspaces/%00",
        "workspaces/%00/actions/lock",
        "workspaces/%00/relationships/tags",
        "state-versions/%00",
        "state-versions/%00/download",
        "projects/%00",
    ):
        for method in ("GET", "POST", "PATCH", "DELETE"):
            response = raw(api, method, path, b"")
            if response.status_code == 405:
                continue
            assert_error(response, 400, "NUL")
    assert_error(api.get("/internal/tfe/api/v2/organizations/%00"), 400, "NUL")


def test_nul_bytes_in_query_arguments_are_400(api: Api, workspace: dict[str, Any]) -> None:
    for path in (
        "organizations?q=%00",
        "organizations?search[name]=a%00",
        "organizations/acme/workspaces?search[name]=%00",
        "organizations/acme/workspaces?search[tags]=%00",
        "organizations/acme/workspaces?filter[project][id]=%00",
        "organizations/acme/projects?filter[names]=%00",
        "state-versions?filter[organization][name]=%00&filter[workspace][name]=prod",
        "state-versions?filter[organization][name]=acme&filter[workspace][name]=%00",
    ):
        assert_error(api.get(path), 400, "NUL")


NUL_BODIES = [
    ("PATCH", "organizations/acme", {"data": {"type": "organizations", "attributes": {"email": "a\x00"}}}),
    ("POST", "organizations/acme/workspaces", {"data": {"type": "workspaces", "attributes": {"name": "a\x00"}}}),
    ("PATCH", "workspaces/{id}", {"data": {"attributes": {"working-directory": "a\x00"}}}),
    ("PATCH", "workspaces/{id}", {"data": {"attributes": {"terraform-version": "1\x00"}}}),
    ("POST", "organizations/acme/projects", {"data": {"type": "projects", "attributes": {"name": "p\x00"}}}),
    ("POST", "workspaces/{id}/actions/lock", {"reason": "r\x00"}),
    ("POST", "workspaces/{id}/relationships/tags", {"data": [{"type": "tags", "attributes": {"name": "t\x00"}}]}),
]


@pytest.mark.parametrize(("method", "path", "body"), NUL_BODIES, ids=[f"{m} {p}" for m, p, _ in NUL_BODIES])
def test_nul_bytes_in_json_bodies_are_400(
    api: Api, workspace: dict[str, Any], method: str, path: str, body: dict[str, Any]
) -> None:
    import json

    assert_error(raw(api, method, path.format(id=workspace["id"]), json.dumps(body).encode()), 400, "NUL")
    assert api.get(f"workspaces/{workspace['id']}").json["data"]["attributes"]["locked"] is False


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["deep-array", "deep-object"])
def test_deeply_nested_json_is_400(api: Api, workspace: dict[str, Any], body: bytes) -> None:
    for method, path in (
        ("PATCH", "organizations/acme"),
        ("POST", "organizations/acme/workspaces"),
        ("PATCH", f"workspaces/{workspace['id']}"),
        ("POST", f"workspaces/{workspace['id']}/actions/lock"),
        ("POST", f"workspaces/{workspace['id']}/relationships/tags"),
        ("DELETE", f"workspaces/{workspace['id']}/relationships/tags"),
        ("POST", f"workspaces/{workspace['id']}/state-versions"),
        ("POST", "organizations/acme/projects"),
    ):
        assert_error(raw(api, method, path, body), 400, "nest")


BAD_TAG_BODIES = {
    "string-attributes": {"data": [{"type": "tags", "attributes": "x"}]},
    "list-attributes": {"data": [{"type": "tags", "attributes": [1]}]},
    "numeric-name": {"data": [{"type": "tags", "attributes": {"name": 5}}]},
    "list-id": {"data": [{"type": "tags", "id": ["a"]}]},
    "object-data": {"data": {"type": "tags"}},
    "string-item": {"data": ["tag-a"]},
    "null-item": {"data": [None]},
    "no-data": {},
    "bad-name": {"data": [{"type": "tags", "attributes": {"name": "a b"}}]},
}


@pytest.mark.parametrize("body", list(BAD_TAG_BODIES.values()), ids=list(BAD_TAG_BODIES))
def test_malformed_tag_bodies_are_4xx(api: Api, workspace: dict[str, Any], body: dict[str, Any]) -> None:
    path = f"workspaces/{workspace['id']}/relationships/tags"
    for method in ("POST", "DELETE"):
        response = api.client.open(api.url(path), method=method, json=body, headers=api.headers())
        assert response.status_code in (400, 422), (method, response.status_code, response.data[:200])
        assert response.mimetype == MEDIA_TYPE and response.json["errors"][0]["detail"]
    assert api.get(path).json["data"] == []


@pytest.mark.parametrize(
    "query",
    [
        "page[number]=4611686018427387904",
        "page[number]=9223372036854775808",
        "page[number]=1000001",
        "page[number]=" + "9" * 5000,
        "page[number]=4611686018427387904&page[size]=100",
    ],
)
def test_page_numbers_out_of_range_are_400(api: Api, workspace: dict[str, Any], query: str) -> None:
    for path in (
        "organizations",
        "organizations/acme/workspaces",
        "organizations/acme/projects",
        f"workspaces/{workspace['id']}/state-versions",
        f"workspaces/{workspace['id']}/relationships/tags",
        "state-versions?filter[organization][name]=acme&filter[workspace][name]=prod",
    ):
        joined = f"{path}{'&' if '?' in path else '?'}{query}"
        assert_error(api.get(joined), 400, "page[number]")


@pytest.mark.parametrize(
    ("query", "number", "size"),
    [
        ("page[size]=4611686018427387904", 1, 100),
        ("page[size]=" + "9" * 5000, 1, 100),
        ("page[number]=0&page[size]=-3", 1, 20),
        ("page[number]=x", 1, 20),
        ("page[number]=1000000&page[size]=100", 1000000, 100),
    ],
)
def test_odd_page_values_fall_back_as_tfe_does(api: Api, workspace: dict[str, Any], query: str, number: int, size: int):
    response = api.get(f"organizations/acme/workspaces?{query}")
    assert response.status_code == 200, response.json
    pagination = response.json["meta"]["pagination"]
    assert (pagination["current-page"], pagination["page-size"]) == (number, size)
