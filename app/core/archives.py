"""Unpacking a configuration archive (``.tar.gz``) that a client uploaded, without trusting anything in it.

Terraform uploads the configuration of a remote run as a gzipped tar. An archive is refused, with the reason, when
a member has an absolute path or climbs out with ``..``, is a symbolic or hard link pointing outside, is a device,
FIFO or other special file, or when the archive holds more than ``max_entries`` members or more than ``max_bytes``
once unpacked. The archive is read as a stream and checked member by member before each is written, so a
decompression bomb stops at the limit instead of filling the disk. Python's ``tarfile`` ``data`` filter does the
path and link checks; the bounds are ours.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app.core.errors import InvalidInput, PayloadTooLarge

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 20_000

_REASONS: tuple[tuple[type[tarfile.FilterError], str], ...] = (
    (tarfile.AbsolutePathError, "has an absolute path"),
    (tarfile.OutsideDestinationError, "points outside the archive (a '..' path)"),
    (tarfile.AbsoluteLinkError, "is a link to an absolute path"),
    (tarfile.LinkOutsideDestinationError, "is a link pointing outside the archive"),
    (tarfile.SpecialFileError, "is a device, FIFO or other special file"),
)


@dataclass(frozen=True)
class Unpacked:
    """What an archive held: how many members and how many bytes of file content."""

    entries: int
    total_bytes: int


def unpack_archive(
    stream: IO[bytes],
    destination: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> Unpacked:
    """Unpack the ``.tar.gz`` in ``stream`` into the empty directory ``destination``; ``InvalidInput`` (or
    ``PayloadTooLarge`` for the bounds) names the first member refused. The caller discards ``destination`` on error.
    """
    entries = total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as archive:
            for member in archive:
                entries += 1
                if entries > max_entries:
                    raise PayloadTooLarge(f"the archive has more than {max_entries} entries")
                total += max(member.size, 0) if member.isfile() else 0
                if total > max_bytes:
                    raise PayloadTooLarge(f"the archive unpacks to more than {max_bytes} bytes")
                _extract(archive, member, destination)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InvalidInput(f"the configuration is not a readable .tar.gz archive: {exc}") from None
    return Unpacked(entries, total)


def _extract(archive: tarfile.TarFile, member: tarfile.TarInfo, destination: Path) -> None:
    # The data filter would quietly make "/etc/x" relative; an archive that names an absolute path is refused.
    if member.name.startswith(("/", "\\")) or (len(member.name) > 1 and member.name[1] == ":"):
        raise InvalidInput(f"archive member {_printable(member.name)!r} has an absolute path")
    try:
        archive.extract(member, destination, filter="data")
    except tarfile.FilterError as refused:
        raise InvalidInput(f"archive member {_printable(member.name)!r} {_reason(refused)}") from None


def _reason(refused: tarfile.FilterError) -> str:
    for kind, reason in _REASONS:
        if isinstance(refused, kind):
            return reason
    return "is not a plain file or directory"


def _printable(name: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in name)[:200]
