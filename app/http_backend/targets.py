"""What an http-backend request names: ``/state/<org>/<workspace>`` by name, ``/v1/backend/<unit>`` by id or name
in ``?org=`` (or the token's organization). Both go through the one resolution step of ``app.auth.access``."""

from __future__ import annotations

from flask import request

from app.auth import current_principal
from app.auth.access import Access, Target, default_org_ref, resolve_org, resolve_workspace
from app.repositories.names import check_name


def unit_org() -> str:
    """The organization of a ``/v1/backend/<unit>`` request: ``?org=`` or the token's."""
    return default_org_ref(current_principal(), request.args.get("org"))


def resolve_org_of(org_ref: str, ref: str, by_id: bool, *, create_missing: bool = False) -> Access:
    """The caller's access to the organization a request names; names are checked first (400 for a bad one).

    With authentication disabled (development) a missing organization is created when ``create_missing``.
    """
    if not by_id:
        check_name("organization", org_ref)
        check_name("workspace", ref)
    return resolve_org(current_principal(), org_ref, create_missing=create_missing)


def resolve(org_ref: str, ref: str, by_id: bool, action: str, *, create_missing: bool = False) -> Target:
    """The workspace a request names, with ``action`` authorized on it (created on demand when asked and allowed)."""
    access = resolve_org_of(org_ref, ref, by_id, create_missing=create_missing)
    return resolve_workspace(access, ref, action, by_id=by_id, create_missing=create_missing)
