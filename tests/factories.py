"""Helpers that create organizations, users and tokens through the repositories, and request bodies."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

# The repositories are imported where they are used: the e2e lock racers (spawned processes) import this module
# for ``lock_info`` and must start without the app and its drivers.


def make_org(app: Flask, name: str = "acme") -> str:
    """Create organization ``name``; returns its id."""
    from app.repositories import orgs

    with app.app_context():
        return orgs.create_org(name).id


def make_token(
    app: Flask,
    org: str = "acme",
    subject: str | None = "alice",
    scope: str = "full",
    workspace: str | None = None,
    role: str | None = "admin",
) -> str:
    """A token secret for ``subject`` (a member of ``org`` with ``role``; the org is created if missing)."""
    from app.repositories import orgs, rbac, tokens, users

    with app.app_context():
        organization = orgs.get_org(org) or orgs.create_org(org)
        user = None
        if subject is not None:
            user = users.ensure_user(subject, f"{subject}@example.com")
            orgs.add_member(organization, user, "test")
            if role is not None:
                rbac.assign_role(organization, user, rbac.require_role(organization, role), "test")
        _, secret = tokens.create_token(organization, user, "test", scope=scope, workspace_name=workspace)
        return secret


def basic(password: str, user: str = "terraform") -> dict[str, str]:
    """Basic auth headers the way Terraform's http backend sends them."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    """Bearer auth headers."""
    return {"Authorization": f"Bearer {token}"}


def lock_info(
    lock_id: str = "l1",
    who: str = "w",
    *,
    info: str = "",
    created: str = "2024-01-01T00:00:00Z",
    indent: int | None = None,
) -> bytes:
    """A LockInfo body as Terraform 1.0.3 sends it (``indent`` formats it unusually, to make exact echoing visible)."""
    return json.dumps(
        {
            "ID": lock_id,
            "Operation": "OperationTypeApply",
            "Info": info,
            "Who": who,
            "Version": "1.0.3",
            "Created": created,
            "Path": "",
        },
        indent=indent,
    ).encode()
