"""Who is calling, as every API sees it after authentication."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``org_id`` binds the caller to one organization (API tokens); None lets membership decide. ``scope`` and
    ``workspace_name`` narrow a token further. ``superuser`` is the local admin (auth disabled, static users).
    ``kind`` "agent" is an agent token: it authenticates Statesman agents only (``agent_pool_id``: its pool, if
    any), and every other API refuses it (``app.auth.permissions.AGENT_ONLY``).
    """

    subject: str
    kind: str
    user_id: str | None = None
    org_id: str | None = None
    scope: str = "full"
    workspace_name: str | None = None
    superuser: bool = False
    email: str | None = None
    # the API token that authenticated the request (tokens mint tokens no stronger or longer-lived than themselves)
    token_id: str | None = None
    agent_pool_id: str | None = None


LOCAL_ADMIN = Principal(subject="local-admin", kind="disabled", superuser=True)
