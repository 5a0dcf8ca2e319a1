"""fs storage behaviour beyond the contract: what a killed write leaves behind, and how it is found."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.drivers.storage.fs import FilesystemStorage


def test_a_leftover_temp_file_is_incomplete_never_an_object(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "states")
    storage.put("ws-a/sv-1", [b"{}"])
    leftover = tmp_path / "states" / "ws-a" / ".tmp-abc123.part"  # the name put() gives its temp file
    leftover.write_bytes(b"half a st")

    assert [item.key for item in storage.list_keys()] == ["ws-a/sv-1"]
    [found] = list(storage.list_incomplete())
    assert (found.key, found.size) == ("ws-a/.tmp-abc123.part", 9)
    storage.discard_incomplete(found.key)
    storage.discard_incomplete(found.key)
    assert not leftover.exists()
    assert [item.key for item in storage.list_keys()] == ["ws-a/sv-1"]


def test_discard_incomplete_refuses_anything_but_a_temp_file(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "states")
    storage.put("ws-a/sv-1", [b"{}"])
    for key in ("ws-a/sv-1.tfstate", "../outside.part", "ws-a/../../x/.tmp-1.part"):
        with pytest.raises(ValueError):
            storage.discard_incomplete(key)
    assert [item.key for item in storage.list_keys()] == ["ws-a/sv-1"]


def test_an_empty_or_missing_root_lists_nothing(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "never-created")
    assert list(storage.list_keys()) == []
    assert list(storage.list_incomplete()) == []
