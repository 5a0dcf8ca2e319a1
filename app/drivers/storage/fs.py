"""Objects as files under ``STORAGE_FS_DIR``: temp file, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from app.core.errors import BackendUnavailable
from app.drivers.storage.base import CHUNK_SIZE, ObjectNotFound, StoredObject
from config import Config

_SAFE_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
SUFFIX = ".tfstate"
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".part"


class FilesystemStorage:
    """A crash leaves either the old object set or the new one: a file only gets its name once it is complete."""

    name = "fs"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_config(cls, config: Config) -> FilesystemStorage:
        return cls(config.storage_fs_dir)

    def _path(self, key: str) -> Path:
        if not _SAFE_KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"unsafe storage key {key!r}")
        return self.root / f"{key}{SUFFIX}"

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        try:
            self._make_dirs(path.parent)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
        except OSError as exc:
            raise BackendUnavailable("fs storage", exc.strerror or str(exc)) from exc
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            self._fsync_dir(path.parent)
        except OSError as exc:
            self._discard(tmp)
            raise BackendUnavailable("fs storage", exc.strerror or str(exc)) from exc
        except BaseException:
            self._discard(tmp)
            raise
        return size

    def open(self, key: str) -> Iterator[bytes]:
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise ObjectNotFound(f"no stored object {key}") from None
        except OSError as exc:
            raise BackendUnavailable("fs storage", exc.strerror or str(exc)) from exc
        return self._stream(handle)

    @staticmethod
    def _stream(handle: object) -> Iterator[bytes]:
        with handle:  # type: ignore[attr-defined]
            while chunk := handle.read(CHUNK_SIZE):  # type: ignore[attr-defined]
                yield chunk

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BackendUnavailable("fs storage", exc.strerror or str(exc)) from exc

    def list_keys(self, prefix: str = "") -> Iterator[StoredObject]:
        for path, info in self._files():
            name = path.name
            if name.startswith(TEMP_PREFIX) or not name.endswith(SUFFIX):
                continue
            key = path.relative_to(self.root).as_posix().removesuffix(SUFFIX)
            if key.startswith(prefix):
                yield StoredObject(key, info.st_size, _mtime(info))

    def list_incomplete(self) -> Iterator[StoredObject]:
        for path, info in self._files():
            if path.name.startswith(TEMP_PREFIX) and path.name.endswith(TEMP_SUFFIX):
                yield StoredObject(path.relative_to(self.root).as_posix(), info.st_size, _mtime(info))

    def discard_incomplete(self, key: str) -> None:
        name = key.rsplit("/", 1)[-1]
        if not _SAFE_KEY.match(key) or ".." in key.split("/") or not name.startswith(TEMP_PREFIX):
            raise ValueError(f"not a temporary file of this storage: {key!r}")
        try:
            (self.root / key).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BackendUnavailable("fs storage", exc.strerror or str(exc)) from exc

    def _files(self) -> Iterator[tuple[Path, os.stat_result]]:
        """Every regular file under the root with its status; files removed while the walk runs are skipped."""
        try:
            for directory, _, names in os.walk(self.root, onerror=_raise):
                for name in names:
                    path = Path(directory) / name
                    with contextlib.suppress(FileNotFoundError):
                        yield path, path.stat()
        except OSError as exc:
            raise BackendUnavailable("fs storage", exc.strerror or str(exc)) from exc

    def check(self) -> None:
        try:
            self._make_dirs(self.root)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise BackendUnavailable("fs storage", f"{self.root} is not writable")
        except OSError as exc:
            raise BackendUnavailable("fs storage", exc.strerror or str(exc)) from exc

    def _make_dirs(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        except OSError as exc:  # some filesystems refuse fsync on directories; the rename is still atomic
            if exc.errno not in (errno.EINVAL, errno.EBADF):
                raise
        finally:
            os.close(fd)

    @staticmethod
    def _discard(tmp: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _mtime(info: os.stat_result) -> datetime:
    return datetime.fromtimestamp(info.st_mtime, UTC).replace(tzinfo=None)


def _raise(exc: OSError) -> None:
    if not isinstance(exc, FileNotFoundError):  # a missing root (nothing stored yet) lists nothing
        raise exc
