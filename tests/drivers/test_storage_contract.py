"""Every storage driver passes the same scenarios."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.core.clock import utcnow
from app.drivers.storage.base import ObjectNotFound, StorageDriver

MIB = 1024 * 1024


def test_put_then_open_returns_the_same_bytes(storage: StorageDriver) -> None:
    data = b'{"serial": 1}' * 1000
    assert storage.put("ws-a/sv-1", [data[:100], data[100:]]) == len(data)
    assert b"".join(storage.open("ws-a/sv-1")) == data


def test_large_object_streams_in_chunks(storage: StorageDriver) -> None:
    data = bytes(range(256)) * (12 * MIB // 256)
    storage.put("ws-a/sv-big", (data[i : i + MIB] for i in range(0, len(data), MIB)))
    chunks = list(storage.open("ws-a/sv-big"))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= 8 * MIB


def test_empty_object(storage: StorageDriver) -> None:
    storage.put("ws-a/sv-empty", [])
    assert b"".join(storage.open("ws-a/sv-empty")) == b""


def test_missing_object_raises_not_found_before_streaming(storage: StorageDriver) -> None:
    with pytest.raises(ObjectNotFound):
        storage.open("ws-a/sv-missing")


def test_keys_are_independent(storage: StorageDriver) -> None:
    storage.put("ws-a/sv-1", [b"one"])
    storage.put("ws-b/sv-1", [b"two"])
    assert b"".join(storage.open("ws-a/sv-1")) == b"one"
    assert b"".join(storage.open("ws-b/sv-1")) == b"two"


def test_delete_is_idempotent(storage: StorageDriver) -> None:
    storage.put("ws-a/sv-1", [b"x"])
    storage.delete("ws-a/sv-1")
    storage.delete("ws-a/sv-1")
    with pytest.raises(ObjectNotFound):
        storage.open("ws-a/sv-1")


def test_failed_write_leaves_no_object(storage: StorageDriver) -> None:
    def exploding():
        yield b"partial"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        storage.put("ws-a/sv-broken", exploding())
    with pytest.raises(ObjectNotFound):
        storage.open("ws-a/sv-broken")


def test_overwrite_replaces_whole_object(storage: StorageDriver) -> None:
    storage.put("ws-a/sv-1", [b"first version, longer"])
    storage.put("ws-a/sv-1", [b"second"])
    assert b"".join(storage.open("ws-a/sv-1")) == b"second"


def test_check_passes_when_reachable(storage: StorageDriver) -> None:
    storage.check()


def test_list_keys_returns_complete_objects_by_prefix(storage: StorageDriver) -> None:
    before = utcnow() - timedelta(minutes=5)
    storage.put("ws-a/sv-1", [b"one"])
    storage.put("ws-a/sv-2-json-state-ab12", [b"copy!"])
    storage.put("ws-b/sv-3", [b"three"])
    everything = {item.key: item for item in storage.list_keys()}
    assert set(everything) == {"ws-a/sv-1", "ws-a/sv-2-json-state-ab12", "ws-b/sv-3"}
    assert everything["ws-a/sv-2-json-state-ab12"].size == 5
    assert all(before < item.modified_at < utcnow() + timedelta(minutes=5) for item in everything.values())
    assert {item.key for item in storage.list_keys("ws-a/")} == {"ws-a/sv-1", "ws-a/sv-2-json-state-ab12"}
    assert list(storage.list_keys("ws-c/")) == []


def test_list_keys_forgets_deleted_objects(storage: StorageDriver) -> None:
    storage.put("ws-a/sv-1", [b"one"])
    storage.delete("ws-a/sv-1")
    assert list(storage.list_keys()) == []


def test_failed_write_leaves_nothing_incomplete(storage: StorageDriver) -> None:
    def exploding():
        yield b"p" * (9 * MIB)  # more than one S3 part: a multipart upload is started, then aborted
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        storage.put("ws-a/sv-broken", exploding())
    assert list(storage.list_incomplete()) == []
    assert list(storage.list_keys()) == []
