"""Storage garbage: objects no state version points at, and leftovers of writes that never finished.

A write stores its object before the row that points at it commits, and a temporary file exists while it is
written, so only what is older than a grace period counts as garbage: an in-flight write is never touched. The
storage is listed before the references are read, so an object whose row commits meanwhile is seen as referenced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from app.core.clock import utcnow
from app.drivers.storage.base import StoredObject
from app.extensions import db, drivers
from app.models import ConfigurationVersion, Run, StateVersion
from app.repositories import runs
from app.repositories.state_versions import COPIES

DEFAULT_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Garbage:
    """What ``find_garbage`` found: old unreferenced objects, old incomplete writes, and how many young ones it kept."""

    objects: list[StoredObject]
    incomplete: list[StoredObject]
    young: int

    @property
    def size(self) -> int:
        """Bytes the garbage takes."""
        return sum(item.size for item in (*self.objects, *self.incomplete))


def referenced_keys() -> set[str]:
    """Every storage key a row points at: states and JSON copies (pending versions too), configuration archives,
    runs' saved plans."""
    columns = [StateVersion.storage_key, *(getattr(StateVersion, copy.key) for copy in COPIES)]
    keys: set[str] = set()
    for row in db.session.execute(db.select(*columns)).yield_per(1000):
        keys.update(key for key in row if key)
    archives = db.select(ConfigurationVersion.storage_key).where(ConfigurationVersion.storage_key.is_not(None))
    keys.update(key for key in db.session.scalars(archives) if key)
    return keys | runs.stored_keys()


def find_garbage(grace: timedelta = DEFAULT_GRACE) -> Garbage:
    """Unreferenced objects and incomplete writes last changed more than ``grace`` ago (nothing is deleted)."""
    storage = drivers().storage
    cutoff = utcnow() - grace
    stored = list(storage.list_keys())
    incomplete = list(storage.list_incomplete())
    referenced = referenced_keys()  # read after listing: see the module docstring
    db.session.rollback()
    unreferenced = [item for item in stored if item.key not in referenced]
    old = [item for item in unreferenced if item.modified_at < cutoff]
    old_incomplete = [item for item in incomplete if item.modified_at < cutoff]
    young = len(unreferenced) - len(old) + len(incomplete) - len(old_incomplete)
    return Garbage(old, old_incomplete, young)


def delete_garbage(garbage: Garbage) -> Iterator[StoredObject]:
    """Delete what ``find_garbage`` found, yielding each item once it is gone.

    Each object is checked once more against the references just before it goes, so a row that began to point at
    it after the search (a restore that reuses a key) keeps it.
    """
    storage = drivers().storage
    for item in garbage.objects:
        if _is_referenced(item.key):
            continue
        storage.delete(item.key)
        yield item
    for item in garbage.incomplete:
        storage.discard_incomplete(item.key)
        yield item


def _is_referenced(key: str) -> bool:
    columns = [StateVersion.storage_key, *(getattr(StateVersion, copy.key) for copy in COPIES)]
    found = db.session.scalar(db.select(db.func.count()).where(db.or_(*(column == key for column in columns))))
    archive = db.session.scalar(
        db.select(db.func.count()).select_from(ConfigurationVersion).where(ConfigurationVersion.storage_key == key)
    )
    run_object = db.session.scalar(
        db.select(db.func.count()).where(db.or_(Run.plan_file_key == key, Run.plan_json_key == key))
    )
    db.session.rollback()
    return bool(found) or bool(archive) or bool(run_object)
