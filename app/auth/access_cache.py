"""What the access step reads on every request, remembered per process for a few seconds.

Terraform sends a burst of requests with the same credentials to the same organization; without this, each of
them would read the organization, the caller's membership and the member's grants again (three of the five queries
of a state read). Two things are remembered, per app and per process:

- an organization by the reference a request named (id, name or external id), as a copy of its row;
- a user's membership and grants in an organization.

The bound, documented for operators: an entry lives ``ACCESS_CACHE_SECONDS``. A commit in this process that changes
organizations, users, memberships, roles, permissions or their links forgets every entry at once, so the worker that
made a change applies it to its next request; every other worker and host applies it within
``ACCESS_CACHE_SECONDS``, like a token revocation (``app.repositories.tokens.VERIFIED_TTL_SECONDS``). Misses are
never remembered: a new organization or membership works at once everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, make_transient_to_detached

from app.core import policy
from app.core.ttl_cache import TtlCache
from app.extensions import db
from app.models import Membership, Organization, Permission, Role, RoleAssignment, RolePermission, User

ACCESS_CACHE_SECONDS = 10.0
_CACHE_KEY = "statesman_access_cache"
_CHANGED = "statesman_access_changed"
# Rows a permission decision depends on: a committed change to any of them forgets the whole cache.
WATCHED = (Organization, User, Membership, Role, RoleAssignment, Permission, RolePermission)
_WATCHED_TABLES = frozenset(model.__table__.name for model in WATCHED)
_ORG_COLUMNS = tuple(column.key for column in inspect(Organization).column_attrs)


@dataclass(frozen=True)
class Standing:
    """A user's standing in one organization: member or not, and the grants of their roles."""

    member: bool
    grants: tuple[policy.Grant, ...]


class AccessCache:
    """The two per-process memories of one app (see the module docstring for the bound)."""

    def __init__(self, ttl_seconds: float = ACCESS_CACHE_SECONDS) -> None:
        self.orgs: TtlCache[Organization] = TtlCache(ttl_seconds)
        self.members: TtlCache[Standing] = TtlCache(ttl_seconds)

    def forget(self) -> None:
        self.orgs.clear()
        self.members.clear()


def init_app(app: Flask) -> None:
    """Give ``app`` its cache; the session hooks that forget it are installed once per process."""
    app.extensions[_CACHE_KEY] = AccessCache()
    if not event.contains(db.session, "after_commit", _forget_after_commit):
        event.listen(db.session, "after_flush", _note_flushed_changes)
        event.listen(db.session, "do_orm_execute", _note_bulk_changes)
        event.listen(db.session, "after_commit", _forget_after_commit)
        event.listen(db.session, "after_rollback", _discard_changes)


def _cache() -> AccessCache | None:
    if not has_app_context():
        return None
    found: AccessCache | None = current_app.extensions.get(_CACHE_KEY)
    return found


def forget_access() -> None:
    """Forget every remembered organization and membership of the current app in this process."""
    cache = _cache()
    if cache is not None:
        cache.forget()


def cached_org(ref: str, load: Callable[[str], Organization | None]) -> Organization | None:
    """The organization ``ref`` names, from memory when it was found within the bound, else from ``load``.

    The remembered copy joins the current session without a query.
    """
    cache = _cache()
    if cache is None:
        return load(ref)
    remembered = cache.orgs.get(ref)
    if remembered is not None:
        # merge without load: a clean copy in this session (or the session's own), the remembered one untouched
        return db.session.merge(remembered, load=False)
    org = load(ref)
    if org is not None:
        cache.orgs.put(ref, _detached_copy(org))
    return org


def _detached_copy(org: Organization) -> Organization:
    """A copy of the loaded row in no session, shared by the threads of the process and never changed."""
    copy = Organization(**{key: getattr(org, key) for key in _ORG_COLUMNS})
    make_transient_to_detached(copy)
    return copy


def cached_membership(org_id: str, user_id: str, load: Callable[[], Standing]) -> Standing:
    """A user's membership and grants in an organization, from memory within the bound, else from ``load``."""
    cache = _cache()
    if cache is None:
        return load()
    key = f"{org_id}\0{user_id}"
    found = cache.members.get(key)
    if found is None:
        found = load()
        if found.member:  # a non-member is asked again each time, so a new membership works at once everywhere
            cache.members.put(key, found)
    return found


# --- forgetting on commit ---------------------------------------------------------------------------------------


def _note_flushed_changes(session: Session, _context: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(instance, WATCHED) for instance in changed):
        session.info[_CHANGED] = True


def _note_bulk_changes(state: ORMExecuteState) -> None:
    """``UPDATE``/``DELETE`` statements bypass the unit of work (and ``after_flush``): look at their table."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _WATCHED_TABLES:
        state.session.info[_CHANGED] = True


def _forget_after_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        forget_access()


def _discard_changes(session: Session) -> None:
    session.info.pop(_CHANGED, None)
