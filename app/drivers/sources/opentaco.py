"""OpenTaco Statesman's storage: ``<prefix>/<org uuid>/<unit uuid>/terraform.tfstate`` (the current state),
``.../terraform.tfstate.lock`` and ``.../versions/v-<YYYYMMDDTHHMMSS.ffffffZ>-<8 hex>.tfstate`` (older versions);
unit and organization names live in its SQL database (``units`` and ``organizations`` tables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from app.core.errors import BackendUnavailable, InvalidInput
from app.drivers.sources.blobs import BlobSource
from app.drivers.sql import create_engine

CURRENT = "terraform.tfstate"
LOCK = "terraform.tfstate.lock"
_VERSION = re.compile(r"^v-(\d{8}T\d{6}\.\d{6})Z-[0-9a-f]{8}\.tfstate$")


def version_timestamp(filename: str) -> datetime | None:
    """The UTC time in a version's name ``v-<YYYYMMDDTHHMMSS.ffffffZ>-<8 hex>.tfstate``, or None for another name."""
    match = _VERSION.match(filename)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S.%f")
    except ValueError:
        return None


@dataclass(frozen=True)
class Version:
    """One state object of a unit: its key and when it was written (the current state last)."""

    key: str
    created_at: datetime | None


@dataclass
class Unit:
    """A unit found in the layout: its organization and unit uuids, its versions oldest first, and the objects of
    its directory that are neither a version nor the lock."""

    org_uuid: str
    unit_uuid: str
    versions: list[Version] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)


@dataclass
class Layout:
    """What the bucket holds: units by (org uuid, unit uuid), and objects outside any unit directory."""

    units: dict[tuple[str, str], Unit] = field(default_factory=dict)
    strays: list[str] = field(default_factory=list)


def scan(blobs: BlobSource) -> Layout:
    """Every unit of the layout, its versions sorted by the time in their names, then the current state."""
    layout = Layout()
    current: dict[tuple[str, str], Version] = {}
    for blob in blobs.list():
        parts = blob.key.split("/")
        if len(parts) < 3:
            layout.strays.append(blob.key)
            continue
        unit = layout.units.setdefault((parts[0], parts[1]), Unit(parts[0], parts[1]))
        rest = parts[2:]
        if rest == [CURRENT]:
            current[(unit.org_uuid, unit.unit_uuid)] = Version(blob.key, blob.modified)
        elif rest == [LOCK]:
            continue  # locks are not migrated
        elif len(rest) == 2 and rest[0] == "versions" and (at := version_timestamp(rest[1])) is not None:
            unit.versions.append(Version(blob.key, at))
        else:
            unit.strays.append(blob.key)
    for ids, unit in layout.units.items():
        unit.versions.sort(key=lambda version: (version.created_at or datetime.min, version.key))
        if ids in current:
            unit.versions.append(current[ids])
    return layout


@dataclass(frozen=True)
class Names:
    """Organization and unit names by uuid, from OpenTaco's database."""

    orgs: dict[str, str]
    units: dict[str, str]


def read_names(url: str) -> Names:
    """``organizations`` (id, name) and ``units`` (id, name) of OpenTaco's SQL database at ``url``."""
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ValueError) as exc:
        raise InvalidInput(f"--database: not a usable database URL ({exc})") from exc
    try:
        with engine.connect() as connection:
            return Names(_names(connection, "organizations"), _names(connection, "units"))
    except SQLAlchemyError as exc:
        detail = exc.__cause__ or exc
        raise BackendUnavailable("import source", f"cannot read OpenTaco's organizations and units: {detail}") from exc
    finally:
        engine.dispose()


def _names(connection: sa.Connection, table: str) -> dict[str, str]:
    rows = connection.execute(sa.text(f"SELECT id, name FROM {table}"))  # table: one of two fixed names
    return {str(row_id): str(name) for row_id, name in rows if name}
