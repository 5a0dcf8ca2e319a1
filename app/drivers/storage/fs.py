"""Objects as files under ``STORAGE_FS_DIR``: temp file, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from app.core.errors import BackendUnavailable
from app.drivers.storage.base import CHUNK_SIZE, ObjectNotFound
from config import Config

_SAFE_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


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
        return self.root / f"{key}.tfstate"

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        try:
            self._make_dirs(path.parent)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
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
