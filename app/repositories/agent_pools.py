"""Agent pools: named groups of an organization's agents; an agent token may be limited to one pool.

Pool names follow the workspace naming rule and are unique per organization. Deleting a pool deletes its agent
tokens with it (they are refused at once here, and by every other worker within ``tokens.VERIFIED_TTL_SECONDS``).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from app.core.errors import Conflict, NotFound
from app.core.ids import new_id
from app.extensions import db
from app.models import AgentPool, ApiToken, Organization
from app.repositories.audit import record_event
from app.repositories.names import check_name, looks_like_id
from app.repositories.tokens import forget_verified_tokens, revoke_tokens

ID_PREFIX = "apool"


def create_pool(org: Organization, name: str, actor: str) -> AgentPool:
    """Create a pool (audited as ``agent_pool.create``); ``InvalidInput`` for a bad name, ``Conflict`` when taken."""
    pool = AgentPool(id=new_id(ID_PREFIX), org_id=org.id, name=check_name("agent pool", name), created_by=actor)
    db.session.add(pool)
    record_event("agent_pool.create", "ok", actor, org_id=org.id, commit=False, agent_pool=pool.id, name=name)
    _commit_name(name)
    return pool


def get_pool(org: Organization, ref: str) -> AgentPool | None:
    """The organization's pool by id (a reference with the shape of a pool id) or else by name; None when missing."""
    if looks_like_id(ref, ID_PREFIX):
        pool = db.session.get(AgentPool, ref)
        return pool if pool is not None and pool.org_id == org.id else None
    return db.session.scalar(db.select(AgentPool).where(AgentPool.org_id == org.id, AgentPool.name == ref))


def require_pool(org: Organization, ref: str) -> AgentPool:
    """``get_pool``, raising ``NotFound`` when missing."""
    pool = get_pool(org, ref)
    if pool is None:
        raise NotFound(f"agent pool {ref!r} not found in organization {org.name!r}")
    return pool


def get_pool_by_id(pool_id: str) -> AgentPool | None:
    """Any organization's pool by id, or None (callers check the organization against the caller)."""
    return db.session.get(AgentPool, pool_id) if looks_like_id(pool_id, ID_PREFIX) else None


def list_pools(org: Organization) -> list[AgentPool]:
    """The organization's pools by name."""
    return list(db.session.scalars(db.select(AgentPool).where(AgentPool.org_id == org.id).order_by(AgentPool.name)))


def rename_pool(pool: AgentPool, name: str, actor: str) -> AgentPool:
    """Give the pool a new name (audited); ``InvalidInput`` for a bad name, ``Conflict`` when taken."""
    if name == pool.name:
        return pool
    old = pool.name
    pool.name = check_name("agent pool", name)
    record_event(
        "agent_pool.rename", "ok", actor, org_id=pool.org_id, commit=False, agent_pool=pool.id, old=old, name=name
    )
    _commit_name(name)
    return pool


def delete_pool(pool: AgentPool, actor: str) -> None:
    """Delete the pool and its agent tokens (audited: the pool and each token revoked)."""
    pool_tokens = list(db.session.scalars(db.select(ApiToken).where(ApiToken.agent_pool_id == pool.id)))
    revoke_tokens(pool_tokens, actor)
    record_event("agent_pool.delete", "ok", actor, org_id=pool.org_id, commit=False, agent_pool=pool.id, name=pool.name)
    # The tokens go explicitly, before the pool, rather than by the foreign key's cascade alone: no database's
    # cascade rules can leave a live token of a deleted pool behind.
    db.session.execute(db.delete(ApiToken).where(ApiToken.agent_pool_id == pool.id))
    db.session.delete(pool)
    db.session.commit()
    forget_verified_tokens()


def _commit_name(name: str) -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"an agent pool named {name!r} already exists in this organization") from None
