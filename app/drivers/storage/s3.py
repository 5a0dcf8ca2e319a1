"""Objects in an S3 bucket (AWS, MinIO, Ceph) under ``<prefix>/<key>.tfstate``.

Small bodies are sent with one PutObject; larger ones with a multipart upload that is aborted on any failure, so
an object only becomes visible once it is complete. Reads stream the body in ``CHUNK_SIZE`` pieces.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from app.core.errors import BackendUnavailable
from app.drivers.storage.base import CHUNK_SIZE, ObjectNotFound, StoredObject
from config import Config, ConfigError

BACKEND = "s3 storage"
# S3 wants parts of at least 5 MiB (except the last); 8 MiB parts allow objects up to 80 GB (10,000 parts).
PART_SIZE = 8 * 1024 * 1024
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
SUFFIX = ".tfstate"
_UPLOAD_ID = "?uploadId="  # joins an object key and a multipart upload id in an incomplete write's handle
_CLIENT_CONFIG = BotoConfig(connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 3})


class S3Storage:
    """Stores each object under ``<prefix>/<key>.tfstate`` in one bucket."""

    name = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_config(cls, config: Config) -> S3Storage:
        if not config.s3_bucket:
            raise ConfigError("OPENTACO_STORAGE=s3 needs OPENTACO_S3_BUCKET (or STORAGE_S3_BUCKET)")
        return cls(client_from_config(config), config.s3_bucket, config.s3_prefix)

    def object_key(self, key: str) -> str:
        """The S3 key an object is stored under."""
        return f"{self._root}{key}{SUFFIX}"

    @property
    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        object_key = self.object_key(key)
        source = iter(chunks)
        first = _fill(bytearray(), source, PART_SIZE + 1)
        if len(first) <= PART_SIZE:
            with _translated():
                self.client.put_object(Bucket=self.bucket, Key=object_key, Body=bytes(first))
            return len(first)
        return self._put_multipart(object_key, first, source)

    def open(self, key: str) -> Iterator[bytes]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectNotFound(f"no stored object {key}") from None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return _ObjectStream(response["Body"])

    def delete(self, key: str) -> None:
        with _translated():
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def list_keys(self, prefix: str = "") -> Iterator[StoredObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._root + prefix)
        with _translated():
            for page in pages:
                for item in page.get("Contents", []):
                    name: str = item["Key"][len(self._root) :]
                    if name.endswith(SUFFIX):  # anything else in the bucket is not ours
                        yield StoredObject(name.removesuffix(SUFFIX), int(item["Size"]), _naive(item["LastModified"]))

    def list_incomplete(self) -> Iterator[StoredObject]:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self._root)
        with _translated():
            for page in pages:
                for upload in page.get("Uploads", []):
                    key, upload_id = upload["Key"], upload["UploadId"]
                    parts = self.client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id).get("Parts", [])
                    size = sum(int(part["Size"]) for part in parts)
                    yield StoredObject(f"{key}{_UPLOAD_ID}{upload_id}", size, _naive(upload["Initiated"]))

    def discard_incomplete(self, key: str) -> None:
        object_key, _, upload_id = key.rpartition(_UPLOAD_ID)
        if not object_key or not upload_id:
            raise ValueError(f"not a multipart upload of this storage: {key!r}")
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=object_key, UploadId=upload_id)
        except ClientError as exc:
            if _error_code(exc) != "NoSuchUpload":
                raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    def check(self) -> None:
        """Raise ``BackendUnavailable`` naming the bucket and endpoint unless the bucket answers."""
        endpoint = self.client.meta.endpoint_url
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES or _error_code(exc) == "NoSuchBucket":
                raise BackendUnavailable(
                    BACKEND, f"bucket {self.bucket} does not exist at {endpoint}: create it, or set OPENTACO_S3_BUCKET"
                ) from exc
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise BackendUnavailable(
                BACKEND,
                f"cannot reach {endpoint} ({type(exc).__name__}): check AWS_ENDPOINT_URL (or STORAGE_S3_ENDPOINT)",
            ) from exc

    def close(self) -> None:
        """Close the client's connection pool."""
        self.client.close()

    def _put_multipart(self, object_key: str, buffer: bytearray, source: Iterator[bytes]) -> int:
        with _translated():
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=object_key)["UploadId"]
        try:
            size = self._upload_parts(object_key, upload_id, buffer, source)
        except BaseException:
            self._abort(object_key, upload_id)
            raise
        return size

    def _upload_parts(self, object_key: str, upload_id: str, buffer: bytearray, source: Iterator[bytes]) -> int:
        parts: list[dict[str, Any]] = []
        size = 0
        with _translated():
            while buffer:
                body = bytes(buffer[:PART_SIZE])
                del buffer[:PART_SIZE]
                number = len(parts) + 1
                response = self.client.upload_part(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id, PartNumber=number, Body=body
                )
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
                size += len(body)
                _fill(buffer, source, PART_SIZE)
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=object_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return size

    def _abort(self, object_key: str, upload_id: str) -> None:
        # the original failure matters more; a lifecycle rule (AbortIncompleteMultipartUpload) reaps what is left
        with suppress(ClientError, BotoCoreError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=object_key, UploadId=upload_id)


class _ObjectStream:
    """Iterates a GetObject body in ``CHUNK_SIZE`` pieces and releases its connection when done or closed."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def __iter__(self) -> _ObjectStream:
        return self

    def __next__(self) -> bytes:
        try:
            chunk: bytes = self.body.read(CHUNK_SIZE)
        except BotoCoreError as exc:
            self.close()
            raise _unavailable(exc) from exc
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        """Release the HTTP connection (WSGI servers call this even when the client goes away)."""
        self.body.close()


def client_from_config(config: Config) -> Any:
    """A boto3 S3 client for the configured endpoint, region, addressing style and credentials."""
    endpoint = config.s3_endpoint
    if endpoint and "://" not in endpoint:  # MinIO-style host:port, scheme chosen by STORAGE_S3_USE_SSL
        endpoint = f"{'https' if config.s3_use_ssl else 'http'}://{endpoint}"
    client_config = _CLIENT_CONFIG.merge(
        BotoConfig(s3={"addressing_style": "path" if config.s3_path_style else "auto"})
    )
    return boto3.session.Session().client(
        "s3",
        region_name=config.s3_region,
        endpoint_url=endpoint,
        use_ssl=config.s3_use_ssl,
        aws_access_key_id=config.s3_access_key,
        aws_secret_access_key=config.s3_secret_key,
        config=client_config,
    )


def _fill(buffer: bytearray, source: Iterator[bytes], limit: int) -> bytearray:
    """Append chunks from ``source`` to ``buffer`` until it holds at least ``limit`` bytes or the source ends."""
    while len(buffer) < limit:
        chunk = next(source, None)
        if chunk is None:
            break
        buffer += chunk
    return buffer


def _naive(at: datetime) -> datetime:
    """A time from S3 (aware) as naive UTC, like every time of the app."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _unavailable(exc: ClientError | BotoCoreError) -> BackendUnavailable:
    """A short message without request details (signatures, credentials, bodies)."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return BackendUnavailable(BACKEND, f"{_error_code(exc) or 'error'} (HTTP {status})")
    return BackendUnavailable(BACKEND, type(exc).__name__)


@contextmanager
def _translated() -> Iterator[None]:
    """Turn botocore errors raised inside the block into ``BackendUnavailable``."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise _unavailable(exc) from exc
