"""``account/details``: the user (or service account) behind the token."""

from __future__ import annotations

from flask import Response

from app.tfc_api.blueprint import bp
from app.tfc_api.context import caller
from app.tfc_api.jsonapi import document
from app.tfc_api.serializers import user_resource


@bp.route("/account/details")
def account_details() -> Response:
    """The caller as a ``users`` resource; 401 for a missing or bad token."""
    return document(user_resource(caller()))
