"""``app.core.statefile``: bounded, hashed, streamed intake of state documents and their summary."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest

from app.core.errors import InvalidInput, PayloadTooLarge
from app.core.statefile import SPOOL_IN_MEMORY, StateBody, StateSummary, summarize


def summary_of(document: object) -> StateSummary:
    return summarize(io.BytesIO(json.dumps(document).encode()))


def test_summary_fields():
    document = {
        "version": 4,
        "terraform_version": "1.4.6",
        "serial": 12,
        "lineage": "3f1e-lineage",
        "outputs": {
            "url": {"value": "https://example.com", "type": "string"},
            "password": {"value": "hunter2", "type": "string", "sensitive": True},
            "ports": {"value": [80, 443], "type": ["list", "number"], "sensitive": False},
        },
        "resources": [
            {"mode": "managed", "type": "aws_instance", "name": "a", "instances": [{"attributes": {"mode": "data"}}]},
            {"mode": "data", "type": "aws_ami", "name": "ami", "instances": []},
            {"mode": "managed", "type": "aws_s3_bucket", "name": "b", "instances": []},
            {"mode": "managed", "type": "null_resource", "name": "c", "instances": []},
            {"mode": "data", "type": "aws_region", "name": "r", "instances": []},
        ],
    }
    summary = summary_of(document)
    assert summary.serial == 12
    assert summary.lineage == "3f1e-lineage"
    assert summary.terraform_version == "1.4.6"
    assert summary.resource_count == 3
    assert summary.outputs == {
        "url": {"type": "string", "sensitive": False},
        "password": {"type": "string", "sensitive": True},
        "ports": {"type": ["list", "number"], "sensitive": False},
    }


def test_output_values_are_never_kept():
    summary = summary_of(
        {
            "serial": 1,
            "lineage": "l",
            "outputs": {"token": {"value": "super-secret-value", "type": "string", "sensitive": True}},
        }
    )
    assert "super-secret-value" not in json.dumps(summary.outputs)


def test_outputs_after_resources_and_nested_keys_do_not_confuse_the_summary():
    document = {
        "resources": [{"mode": "managed", "instances": [{"attributes": {"serial": 99, "lineage": "nested"}}]}],
        "outputs": {"o": {"value": {"serial": 77}, "type": ["object", {"serial": "number"}]}},
        "lineage": "top",
        "serial": 3,
    }
    summary = summary_of(document)
    assert summary.serial == 3
    assert summary.lineage == "top"
    assert summary.resource_count == 1
    assert summary.outputs == {"o": {"type": ["object", {"serial": "number"}], "sensitive": False}}


def test_minimal_state():
    summary = summary_of({"serial": 0})
    assert summary == StateSummary(serial=0, lineage="", terraform_version=None, outputs={}, resource_count=0)


def test_old_style_state_without_resources():
    summary = summary_of({"version": 3, "serial": 2, "lineage": "l", "modules": [{"path": ["root"]}]})
    assert summary.serial == 2
    assert summary.resource_count == 0


@pytest.mark.parametrize("data", [b"[]", b'[{"serial": 1}]', b"1", b'"state"', b"null", b"true"])
def test_non_object_is_refused(data):
    with pytest.raises(InvalidInput, match="JSON object"):
        summarize(io.BytesIO(data))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b'{"serial": 1',
        b'{"serial": 1,}',
        b"{serial: 1}",
        b'{"serial": 1} trailing',
        b'{"serial": 1}{"serial": 2}',
        b'{"serial": 1, "outputs": {"a": ',
    ],
    ids=[
        "empty",
        "open-brace",
        "truncated",
        "trailing-comma",
        "unquoted-key",
        "trailing-garbage",
        "two-documents",
        "ends-inside-outputs",
    ],
)
def test_malformed_json_is_refused(data):
    with pytest.raises(InvalidInput):
        summarize(io.BytesIO(data))


def test_invalid_utf8_is_refused():
    with pytest.raises(InvalidInput):
        summarize(io.BytesIO(b'{"serial": 1, "lineage": "\xff\xfe"}'))


@pytest.mark.parametrize(
    "document",
    [
        {"lineage": "l"},
        {"serial": -1},
        {"serial": 1.5},
        {"serial": 1.0},
        {"serial": "1"},
        {"serial": True},
        {"serial": None},
        {"serial": [1]},
    ],
    ids=["missing", "negative", "fraction", "float", "string", "bool", "null", "list"],
)
def test_bad_serial_is_refused(document):
    with pytest.raises(InvalidInput, match="serial"):
        summary_of(document)


@pytest.mark.parametrize(
    "lineage",
    [5, True, None, ["a"], {"a": "b"}],
    ids=["number", "bool", "null", "list", "object"],
)
def test_non_string_lineage_is_refused(lineage):
    with pytest.raises(InvalidInput, match="lineage"):
        summary_of({"serial": 1, "lineage": lineage})


def test_huge_serial():
    assert summary_of({"serial": 2**62}).serial == 2**62


# --- StateBody ---------------------------------------------------------------------------------------------------


def big_state(size: int) -> bytes:
    """A valid state of exactly ``size`` bytes (one large output)."""
    head = b'{"version": 4, "serial": 7, "lineage": "big", "outputs": {"blob": {"type": "string", "value": "'
    tail = b'"}}, "resources": [{"mode": "managed", "type": "t", "name": "n", "instances": []}]}'
    filler = (b"0123456789abcdef" * (size // 16 + 1))[: size - len(head) - len(tail)]
    data = head + filler + tail
    assert len(data) == size
    return data


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.slow
def test_spooling_a_20_mb_body():
    data = big_state(20 * 1024 * 1024 + 13)
    with StateBody.receive(chunked(data, 1024 * 1024 + 7), limit=32 * 1024 * 1024) as body:
        assert body.size == len(data)
        assert body.md5_digest == hashlib.md5(data).digest()
        assert body.md5_hex == hashlib.md5(data).hexdigest()
        assert body.md5_base64 == base64.b64encode(hashlib.md5(data).digest()).decode()
        assert body.sha256 == hashlib.sha256(data).hexdigest()
        assert body._spool._rolled  # past SPOOL_IN_MEMORY the bytes live in a temporary file
        summary = body.validate()
        assert summary.serial == 7
        assert summary.lineage == "big"
        assert summary.resource_count == 1
        assert summary.outputs == {"blob": {"type": "string", "sensitive": False}}
        assert body.summary == summary
        # Exact bytes back, twice (chunks() restarts from the beginning).
        assert hashlib.sha256(b"".join(body.chunks())).hexdigest() == body.sha256
        assert body.read() == data
        assert all(len(chunk) <= 1024 * 1024 for chunk in body.chunks())


def test_small_body_stays_in_memory_and_reads_back_exactly():
    data = b'{"serial": 1, "lineage": "x"}\n  '
    with StateBody.from_bytes(data, limit=1000) as body:
        assert not body._spool._rolled
        assert body.read() == data
        assert body.size == len(data)
        assert len(data) < SPOOL_IN_MEMORY


def test_size_limit():
    data = big_state(5000)
    with StateBody.receive(chunked(data, 999), limit=5000) as body:
        assert body.size == 5000
    with pytest.raises(PayloadTooLarge, match="4999"):
        StateBody.receive(chunked(data, 999), limit=4999)


def test_size_limit_stops_reading_early():
    consumed = []

    def endless():
        while True:
            consumed.append(1)
            yield b"x" * 1000

    with pytest.raises(PayloadTooLarge):
        StateBody.receive(endless(), limit=10_000)
    assert len(consumed) == 11


def test_empty_body_is_refused():
    with pytest.raises(InvalidInput, match="empty"):
        StateBody.receive([], limit=100)
    with pytest.raises(InvalidInput, match="empty"):
        StateBody.receive([b"", b""], limit=100)


def test_content_md5():
    data = b'{"serial": 1}'
    with StateBody.from_bytes(data, limit=100) as body:
        body.verify_md5(None)
        body.verify_md5("")
        body.verify_md5(base64.b64encode(hashlib.md5(data).digest()).decode())
        body.verify_md5(" " + base64.b64encode(hashlib.md5(data).digest()).decode() + " ")
        with pytest.raises(InvalidInput, match="Content-MD5"):
            body.verify_md5(base64.b64encode(hashlib.md5(b"other").digest()).decode())
        with pytest.raises(InvalidInput):
            body.verify_md5("not-base64")


def test_validate_refuses_a_non_state():
    with StateBody.from_bytes(b"[1, 2]", limit=100) as body, pytest.raises(InvalidInput):
        body.validate()
