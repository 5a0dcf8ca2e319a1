"""Objects of another server's storage, read-only: a local directory (``fs:DIR``) or a bucket (``s3://bucket/prefix``).

Keys are relative to the source's root or prefix and use ``/``; botocore and OS errors stop here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from app.core.errors import BackendUnavailable, InvalidInput
from app.drivers.storage import s3
from app.drivers.storage.base import ObjectNotFound
from config import Config


@dataclass(frozen=True)
class Blob:
    """One object: its key below the source's root and when it was last written there (naive UTC)."""

    key: str
    modified: datetime | None


class BlobSource(Protocol):
    """Objects listed and read by key."""

    description: str

    def list(self, under: str = "") -> Iterator[Blob]:
        """Every object whose key starts with ``under``."""
        ...

    def read(self, key: str) -> bytes:
        """The object's bytes; raises ``ObjectNotFound``."""
        ...

    def close(self) -> None: ...


class DirectorySource:
    """Files below a local directory."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise InvalidInput(f"{root} is not a directory")
        self.root = root
        self.description = f"fs:{root}"

    def list(self, under: str = "") -> Iterator[Blob]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(under):
                yield Blob(key, datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None))

    def read(self, key: str) -> bytes:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"no file {key} in {self.root}") from None
        except OSError as exc:
            raise BackendUnavailable("import source", f"cannot read {self.root / key}: {exc.strerror}") from exc

    def close(self) -> None:
        pass


class BucketSource:
    """Objects of an S3 bucket below a prefix."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket = client, bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.description = f"s3://{bucket}/{self.prefix}"

    def list(self, under: str = "") -> Iterator[Blob]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + under)
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    modified = item.get("LastModified")
                    at = modified.astimezone(UTC).replace(tzinfo=None) if modified else None
                    yield Blob(item["Key"].removeprefix(self.prefix), at)
        except (ClientError, BotoCoreError) as exc:
            raise BackendUnavailable("import source", f"cannot list {self.description}: {exc}") from exc

    def read(self, key: str) -> bytes:
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(f"no object {key} in {self.description}") from None
            raise BackendUnavailable("import source", f"cannot read {key} in {self.description}: {exc}") from exc
        except BotoCoreError as exc:
            raise BackendUnavailable("import source", f"cannot read {key} in {self.description}: {exc}") from exc
        return body

    def close(self) -> None:
        self.client.close()


def open_blobs(source: str, config: Config) -> BlobSource:
    """``fs:DIR`` or ``s3://bucket[/prefix]``; the S3 endpoint, region and credentials come from the S3 settings
    (``AWS_ENDPOINT_URL``, ``STORAGE_S3_*``) or else the standard AWS chain."""
    if source.startswith("fs:"):
        return DirectorySource(Path(source.removeprefix("fs:")).expanduser())
    if source.startswith("s3://"):
        bucket, _, prefix = source.removeprefix("s3://").partition("/")
        if not bucket:
            raise InvalidInput(f"{source!r}: expected s3://bucket[/prefix]")
        return BucketSource(s3.client_from_config(replace(config, s3_bucket=bucket)), bucket, prefix)
    raise InvalidInput(f"unknown source {source!r}: expected fs:DIR or s3://bucket[/prefix]")
