"""S3 storage behaviour beyond the contract: key layout, multipart uploads, failures, error translation."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from botocore.stub import Stubber

from app.core.errors import BackendUnavailable
from app.drivers.storage.base import CHUNK_SIZE, ObjectNotFound
from app.drivers.storage.s3 import PART_SIZE, S3Storage
from config import ConfigError
from tests.drivers.storage_services import (
    S3_PREFIX,
    S3_SECRET_KEY,
    closed_port,
    new_s3_bucket,
    s3_config,
)

MIB = 1024 * 1024
QUICK_SECONDS = 10


@dataclass
class Bucket:
    """A fresh moto bucket, a driver factory for it and a plain client to look behind the driver's back."""

    endpoint: str
    name: str
    admin: Any
    build: Callable[..., S3Storage]


@pytest.fixture
def bucket(request: pytest.FixtureRequest) -> Iterator[Bucket]:
    endpoint, name, admin = new_s3_bucket(request)
    drivers: list[S3Storage] = []

    def build(**changes: Any) -> S3Storage:
        drivers.append(S3Storage.from_config(s3_config(endpoint, name, **changes)))
        return drivers[-1]

    yield Bucket(endpoint, name, admin, build)
    for driver in drivers:
        driver.close()


def _keys(bucket: Bucket) -> list[str]:
    return [o["Key"] for o in bucket.admin.list_objects_v2(Bucket=bucket.name).get("Contents", [])]


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def _etag(bucket: Bucket, key: str) -> str:
    etag: str = bucket.admin.head_object(Bucket=bucket.name, Key=key)["ETag"]
    return etag.strip('"')


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (S3_PREFIX, f"{S3_PREFIX}/ws-a/sv-1.tfstate"),
        ("/team/states/", "team/states/ws-a/sv-1.tfstate"),
        ("", "ws-a/sv-1.tfstate"),
    ],
)
def test_objects_are_stored_under_the_prefix(bucket: Bucket, prefix: str, expected: str) -> None:
    bucket.build(s3_prefix=prefix).put("ws-a/sv-1", [b"{}"])
    assert _keys(bucket) == [expected]


@pytest.mark.slow
def test_multipart_upload_of_20_mib_round_trips(bucket: Bucket) -> None:
    storage = bucket.build()
    data = os.urandom(20 * MIB)
    # odd chunk sizes make the driver re-chunk into parts
    assert storage.put("ws-a/sv-big", _pieces(data, 3 * MIB + 7)) == len(data)
    key = storage.object_key("ws-a/sv-big")
    assert _etag(bucket, key).endswith("-3")  # a multipart object: 8 + 8 + 4 MiB
    chunks = list(storage.open("ws-a/sv-big"))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= CHUNK_SIZE


def test_a_body_of_exactly_one_part_is_a_single_put(bucket: Bucket) -> None:
    storage = bucket.build()
    storage.put("ws-a/sv-1", _pieces(b"x" * PART_SIZE, MIB))
    assert "-" not in _etag(bucket, storage.object_key("ws-a/sv-1"))


def test_one_byte_over_a_part_is_a_multipart_upload(bucket: Bucket) -> None:
    storage = bucket.build()
    data = os.urandom(PART_SIZE + 1)
    storage.put("ws-a/sv-1", [data])
    assert _etag(bucket, storage.object_key("ws-a/sv-1")).endswith("-2")
    assert b"".join(storage.open("ws-a/sv-1")) == data


def test_failed_put_mid_stream_leaves_no_object_and_no_pending_upload(bucket: Bucket) -> None:
    storage = bucket.build()

    def exploding() -> Iterator[bytes]:
        yield from _pieces(os.urandom(10 * MIB), MIB)  # one part is already uploaded when the failure comes
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        storage.put("ws-a/sv-broken", exploding())
    assert _keys(bucket) == []
    assert bucket.admin.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []) == []


def test_failed_overwrite_keeps_the_previous_object(bucket: Bucket) -> None:
    storage = bucket.build()
    storage.put("ws-a/sv-1", [b"old"])

    def exploding() -> Iterator[bytes]:
        yield b"x" * (PART_SIZE + 1)
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        storage.put("ws-a/sv-1", exploding())
    assert b"".join(storage.open("ws-a/sv-1")) == b"old"


def test_endpoint_without_scheme_follows_use_ssl(bucket: Bucket) -> None:
    storage = bucket.build(s3_endpoint=bucket.endpoint.removeprefix("http://"), s3_use_ssl=False)
    storage.put("ws-a/sv-1", [b"plain http"])
    assert b"".join(storage.open("ws-a/sv-1")) == b"plain http"


def test_closing_an_unread_stream_releases_it(bucket: Bucket) -> None:
    storage = bucket.build()
    storage.put("ws-a/sv-1", [b"x" * (2 * MIB)])
    stream = storage.open("ws-a/sv-1")
    stream.close()  # type: ignore[attr-defined]
    assert b"".join(storage.open("ws-a/sv-1")) == b"x" * (2 * MIB)


def test_missing_bucket_is_unavailable_not_missing_object(bucket: Bucket) -> None:
    storage = bucket.build(s3_bucket="statesman-no-such-bucket")
    with pytest.raises(BackendUnavailable, match="NoSuchBucket"):
        storage.open("ws-a/sv-1")
    # The readiness probe and start-up name the bucket, the endpoint and the fix, not just "404".
    with pytest.raises(BackendUnavailable, match=r"bucket statesman-no-such-bucket does not exist at http:.*create it"):
        storage.check()


def _timed_unavailable(call: Callable[[], object]) -> BackendUnavailable:
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        call()
    assert time.monotonic() - started < QUICK_SECONDS
    assert isinstance(caught.value.__cause__, BotoCoreError)
    assert S3_SECRET_KEY not in str(caught.value)
    return caught.value


@pytest.mark.slow
def test_unreachable_endpoint_is_unavailable_quickly(bucket: Bucket) -> None:
    storage = bucket.build(s3_endpoint=f"http://127.0.0.1:{closed_port()}")
    _timed_unavailable(lambda: storage.put("ws-a/sv-1", [b"{}"]))
    _timed_unavailable(lambda: storage.put("ws-a/sv-big", _pieces(b"x" * (PART_SIZE + MIB), MIB)))
    _timed_unavailable(lambda: storage.open("ws-a/sv-1"))
    _timed_unavailable(lambda: storage.delete("ws-a/sv-1"))
    error = _timed_unavailable(storage.check)
    assert error.backend == "s3 storage"


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDenied", 403), ("SlowDown", 503), ("InternalError", 500), ("InvalidAccessKeyId", 403)],
)
def test_service_errors_are_unavailable(bucket: Bucket, code: str, status: int) -> None:
    storage = bucket.build()
    with Stubber(storage.client) as stub:
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        stub.add_client_error("put_object", service_error_code=code, http_status_code=status)
        stub.add_client_error("head_bucket", service_error_code=code, http_status_code=status)
        for call in (lambda: storage.open("ws-a/sv-1"), lambda: storage.put("ws-a/sv-1", [b"{}"]), storage.check):
            with pytest.raises(BackendUnavailable, match=f"{code} \\(HTTP {status}\\)") as caught:
                call()
            assert isinstance(caught.value.__cause__, ClientError)


def test_missing_key_is_object_not_found(bucket: Bucket) -> None:
    storage = bucket.build()
    with Stubber(storage.client) as stub:
        stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
        with pytest.raises(ObjectNotFound):
            storage.open("ws-a/sv-1")


def test_bucket_is_required() -> None:
    with pytest.raises(ConfigError, match="OPENTACO_S3_BUCKET"):
        S3Storage.from_config(s3_config("http://127.0.0.1:1", ""))


def test_listing_skips_foreign_objects_and_reports_abandoned_uploads(bucket: Bucket) -> None:
    storage = bucket.build()
    storage.put("ws-a/sv-1", [b"{}"])
    bucket.admin.put_object(Bucket=bucket.name, Key=f"{S3_PREFIX}/README.txt", Body=b"not ours")
    bucket.admin.put_object(Bucket=bucket.name, Key="elsewhere/ws-a/sv-9.tfstate", Body=b"another prefix")
    # what a killed process leaves: a multipart upload with a part and no completion
    key = storage.object_key("ws-a/sv-2")
    upload_id = bucket.admin.create_multipart_upload(Bucket=bucket.name, Key=key)["UploadId"]
    bucket.admin.upload_part(Bucket=bucket.name, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * MIB)

    assert [item.key for item in storage.list_keys()] == ["ws-a/sv-1"]
    [abandoned] = list(storage.list_incomplete())
    assert abandoned.size == MIB and upload_id in abandoned.key
    storage.discard_incomplete(abandoned.key)
    storage.discard_incomplete(abandoned.key)  # already gone: not an error
    assert list(storage.list_incomplete()) == []
    assert bucket.admin.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []) == []
