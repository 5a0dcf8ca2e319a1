"""Workspace locks through the configured lock driver, each change audited."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from app.core.errors import Conflict, InvalidInput, LockConflict
from app.core.json_input import parse_json
from app.core.locks import HeldLock
from app.extensions import config, db, drivers
from app.models import Workspace
from app.repositories.audit import record_event

LOCKINFO_FIELDS = ("ID", "Operation", "Info", "Who", "Version", "Created", "Path")
MAX_LOCKINFO_BYTES = 64 * 1024
# Terraform's lock IDs are UUIDs. The bound is the width of the lock_id columns; printable excludes control
# characters, line breaks and lone surrogates, which would corrupt logs and the Redis driver's Lua JSON decoding.
MAX_LOCK_ID = 255
LOCK_ID_RULE = f"lock IDs are 1-{MAX_LOCK_ID} printable characters"


def lock_details(holder: HeldLock) -> dict[str, Any]:
    """The stored LockInfo as an object (``{}`` when it is not JSON)."""
    try:
        info = json.loads(holder.info)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def describe(holder: HeldLock) -> str:
    """Who holds a lock, for messages."""
    who = lock_details(holder).get("Who") or "someone else"
    return f"{who} (lock ID {holder.lock_id!r})"


def check_lock_id(lock_id: str) -> str:
    """Return ``lock_id`` or raise ``InvalidInput`` naming the rule (every API and every driver sees only these)."""
    if not 0 < len(lock_id) <= MAX_LOCK_ID or not lock_id.isprintable() or not lock_id.strip():
        raise InvalidInput(f"invalid lock ID: {LOCK_ID_RULE}")
    return lock_id


def parse_lock_info(body: bytes) -> tuple[str, str]:
    """The lock ID and the exact text of a LockInfo body; raises ``InvalidInput`` when it is not one."""
    info = _lock_info_object(body, "lock info")
    if not isinstance(info.get("ID"), str):
        raise InvalidInput('lock info must be a JSON object with a non-empty string "ID"')
    check_lock_id(info["ID"])
    wrong = [f for f in LOCKINFO_FIELDS if f in info and not isinstance(info[f], str)]
    if wrong:
        raise InvalidInput(f"lock info fields must be strings: {', '.join(wrong)}")
    return info["ID"], body.decode("utf-8")


def lock_id_from_body(body: bytes) -> str | None:
    """The ``ID`` of an unlock body, or None for an empty body (a force-unlock); anything else is a 400.

    Terraform's ``force-unlock`` sends no body at all; every other unlock repeats the LockInfo of the LOCK.
    A body that is present but malformed must not fall through to a force-unlock.
    """
    if not body.strip():
        return None
    info = _lock_info_object(body, "unlock body")
    lock_id = info.get("ID")
    if not isinstance(lock_id, str):
        raise InvalidInput('unlock body must be empty (force-unlock) or the LockInfo with a string "ID"')
    return check_lock_id(lock_id)


def _lock_info_object(body: bytes, what: str) -> dict[str, Any]:
    if len(body) > MAX_LOCKINFO_BYTES:
        raise InvalidInput(f"{what} is larger than {MAX_LOCKINFO_BYTES} bytes")
    info = parse_json(body, what)
    if not isinstance(info, dict):
        raise InvalidInput(f'{what} must be a JSON object with a non-empty string "ID"')
    return info


def joined_connection() -> Connection | None:
    """The session's connection when the lock table is in the metadata database, else None.

    A lock change made on it commits with the caller's transaction (a lock row with its audit event, a run's lock
    with its promotion), in one write, and a read of the lock takes no second connection. It also keeps a request
    from waiting on itself: on SQLite a second connection cannot write while the session holds the write lock.
    """
    return db.session.connection() if drivers().locks.shares_metadata_database else None


def get_lock(workspace: Workspace) -> HeldLock | None:
    """The workspace's current lock, or None."""
    return drivers().locks.get(workspace.id, joined_connection())


def get_locks(workspaces: Sequence[Workspace]) -> dict[str, HeldLock]:
    """The current locks of ``workspaces`` by workspace id (unlocked ones absent), in one driver round trip."""
    return drivers().locks.get_many([workspace.id for workspace in workspaces], joined_connection())


def lock_workspace(workspace: Workspace, lock_id: str, info: str, actor: str) -> HeldLock:
    """Acquire the lock (idempotent for the same ID); raises ``LockConflict`` with the holder."""
    check_lock_id(lock_id)
    try:
        held = drivers().locks.acquire(workspace.id, lock_id, info, joined_connection())
    except LockConflict as conflict:
        record_event("lock", "conflict", actor, workspace=workspace, lock_id=lock_id, holder_id=conflict.holder.lock_id)
        raise
    record_event("lock", "ok", actor, workspace=workspace, lock_id=lock_id)
    return held


def unlock_workspace(workspace: Workspace, lock_id: str, actor: str) -> HeldLock | None:
    """Release the lock held under ``lock_id``; unlocked is fine; raises ``LockConflict`` for another ID."""
    check_lock_id(lock_id)
    try:
        released = drivers().locks.release(workspace.id, lock_id, joined_connection())
    except LockConflict as conflict:
        record_event(
            "unlock", "conflict", actor, workspace=workspace, lock_id=lock_id, holder_id=conflict.holder.lock_id
        )
        raise
    if released:
        record_event("unlock", "ok", actor, workspace=workspace, lock_id=lock_id)
    return released


def force_unlock_workspace(workspace: Workspace, actor: str) -> HeldLock | None:
    """Clear whatever lock is held (``FORCE_UNLOCK_ENABLED``); raises ``Forbidden`` when force-unlock is off."""
    if not config().force_unlock_enabled:
        holder = get_lock(workspace)
        if holder is None:
            return None
        record_event("force_unlock", "disabled", actor, workspace=workspace, holder_id=holder.lock_id)
        raise LockConflict("force-unlock is disabled on this server (FORCE_UNLOCK_ENABLED=false)", holder)
    released = drivers().locks.release(workspace.id, None, joined_connection())
    if released:
        record_event("force_unlock", "ok", actor, workspace=workspace, holder_id=released.lock_id)
    return released


def check_write_lock(workspace: Workspace, lock_id: str | None) -> None:
    """Refuse a write while someone else holds the lock (or any unlocked write if ``REQUIRE_LOCK_FOR_WRITE``)."""
    if lock_id is not None:
        check_lock_id(lock_id)
    holder = get_lock(workspace)
    if holder is not None and holder.lock_id != lock_id:
        reason = "without its lock ID" if lock_id is None else f"with lock ID {lock_id!r}, which is not the holder's"
        raise LockConflict(f"workspace is locked by {holder.lock_id!r}; write refused {reason}", holder)
    if holder is None and config().require_lock_for_write:
        raise Conflict("this server requires a lock for every write (REQUIRE_LOCK_FOR_WRITE=true); lock first")
    if holder is None and lock_id and config().lock_ttl_seconds:
        # With LOCK_TTL on, a lock can vanish under a running apply; its write must not land unprotected.
        raise Conflict(f"lock {lock_id!r} is no longer held (it expired under LOCK_TTL or was released)")
