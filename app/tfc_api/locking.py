"""TFE lock semantics on top of the shared lock driver.

TFE locks belong to a user, not to a LockInfo ID: the client never sends an ID. Each TFE lock gets a fresh random
ID (so two jobs with the same token never both "acquire" it) and a LockInfo that records the principal; "the
caller holds the lock" means the stored lock is a TFE lock taken by the same principal. Locks taken through the
http backend or the internal API are somebody else's here: they are never adopted.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from app.auth.principal import Principal
from app.core.errors import Conflict, LockConflict
from app.core.locks import HeldLock
from app.models import Workspace
from app.repositories.locks import describe, get_lock, lock_details
from app.tfc_api.context import principal_user_id

LOCK_ID_PREFIX = "tfe-"


def new_lock_info(principal: Principal, reason: str) -> tuple[str, str]:
    """A fresh lock ID and the LockInfo text stored with it (readable by the http backend's clients too)."""
    lock_id = f"{LOCK_ID_PREFIX}{uuid.uuid4()}"
    info = {
        "ID": lock_id,
        "Operation": "OperationTypeTFELock",
        "Info": reason,
        "Who": principal.email or principal.subject,
        "Version": "",
        "Created": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "Path": "",
        "Principal": principal.subject,
        "UserID": principal_user_id(principal),
    }
    return lock_id, json.dumps(info)


def is_held_by(holder: HeldLock, subject: str) -> bool:
    """True when ``holder`` is a TFE lock taken by the principal ``subject``."""
    return holder.lock_id.startswith(LOCK_ID_PREFIX) and lock_details(holder).get("Principal") == subject


def require_lock_of(workspace: Workspace, subject: str, doing: str) -> str:
    """The ID of ``subject``'s lock on ``workspace``; ``Conflict`` when unlocked, ``LockConflict`` when not theirs."""
    holder = get_lock(workspace)
    if holder is None:
        raise Conflict(
            f"workspace {workspace.name!r} is not locked: lock it (POST workspaces/{workspace.id}/"
            f"actions/lock) before {doing}; only the lock holder may do that"
        )
    if not is_held_by(holder, subject):
        raise LockConflict(
            f"workspace {workspace.name!r} is locked by {describe(holder)}: {doing} needs the caller's own lock", holder
        )
    return holder.lock_id
