"""Configuration archives: what a hostile upload may try, each refused with its reason; an honest one unpacks."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core.archives import unpack_archive
from app.core.errors import InvalidInput, PayloadTooLarge

Adder = Callable[[tarfile.TarFile], None]


def archive(*adders: Adder) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for add in adders:
            add(tar)
    buffer.seek(0)
    return buffer


def file(name: str, content: bytes = b"x") -> Adder:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))

    return add


def special(name: str, kind: bytes, linkname: str = "") -> Adder:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, linkname
        tar.addfile(info)

    return add


def test_an_honest_configuration_unpacks(tmp_path: Path) -> None:
    source = archive(
        file("main.tf", b'resource "null_resource" "a" {}\n'),
        special("modules", tarfile.DIRTYPE),
        file("modules/net/main.tf", b"# net\n"),
        special("current.tf", tarfile.SYMTYPE, "main.tf"),
    )
    unpacked = unpack_archive(source, tmp_path)
    assert unpacked.entries == 4
    assert (tmp_path / "main.tf").read_bytes().startswith(b"resource")
    assert (tmp_path / "modules/net/main.tf").read_text() == "# net\n"
    assert (tmp_path / "current.tf").resolve() == (tmp_path / "main.tf").resolve()


@pytest.mark.parametrize(
    "adder, reason",
    [
        (file("/etc/cron.d/evil"), "absolute path"),
        (file("../outside.tf"), "outside the archive"),
        (file("modules/../../outside.tf"), "outside the archive"),
        (special("escape", tarfile.SYMTYPE, "../../etc/passwd"), "link pointing outside"),
        (special("abs", tarfile.SYMTYPE, "/etc/passwd"), "link to an absolute path"),
        (special("hard", tarfile.LNKTYPE, "../../etc/passwd"), "outside"),
        (special("null", tarfile.CHRTYPE), "special file"),
        (special("disk", tarfile.BLKTYPE), "special file"),
        (special("pipe", tarfile.FIFOTYPE), "special file"),
    ],
)
def test_hostile_members_are_refused_with_the_reason(tmp_path: Path, adder: Adder, reason: str) -> None:
    target = tmp_path / "run"
    target.mkdir()
    with pytest.raises(InvalidInput, match=reason):
        unpack_archive(archive(file("main.tf"), adder), target)
    assert not (tmp_path / "outside.tf").exists()


def test_a_link_then_a_write_through_it_cannot_escape(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    with pytest.raises(InvalidInput):
        unpack_archive(archive(special("dir", tarfile.SYMTYPE, ".."), file("dir/planted.tf")), target)
    assert not (tmp_path / "planted.tf").exists()


def test_too_many_entries_are_refused(tmp_path: Path) -> None:
    source = archive(*(file(f"f{i}.tf") for i in range(11)))
    with pytest.raises(PayloadTooLarge, match="more than 10 entries"):
        unpack_archive(source, tmp_path, max_entries=10)


def test_an_archive_larger_unpacked_than_allowed_stops_at_the_limit(tmp_path: Path) -> None:
    bomb = archive(file("a.tf", b"\0" * 600_000), file("b.tf", b"\0" * 600_000))  # compresses to almost nothing
    assert len(bomb.getvalue()) < 10_000
    with pytest.raises(PayloadTooLarge, match="more than 1000000 bytes"):
        unpack_archive(bomb, tmp_path, max_bytes=1_000_000)
    assert not (tmp_path / "b.tf").exists()


@pytest.mark.parametrize(
    "body",
    [b"", b"not an archive", gzip.compress(b"not a tar either" * 100, mtime=0)],
    ids=["empty", "text", "gzip-of-text"],
)
def test_something_else_than_a_tar_gz_is_refused(tmp_path: Path, body: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"not a readable \.tar\.gz"):
        unpack_archive(io.BytesIO(body), tmp_path)
