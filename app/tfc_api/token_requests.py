"""What a TFE API token request asks for: its ``description`` and ``expired-at``, under the rule that a token never
outlives the one that made it (a short-lived access token cannot mint a lasting user, organization or agent token).

Shared by the user, organization and agent token resources.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.auth.principal import Principal
from app.core.clock import utcnow
from app.core.errors import InvalidInput
from app.repositories.tokens import get_token


def requested_expiry(value: object, principal: Principal) -> datetime | None:
    """The requested expiry (RFC 3339, in the future) as naive UTC, capped at the calling token's own expiry."""
    requested: datetime | None = None
    if value is not None:
        if not isinstance(value, str):
            raise InvalidInput("expired-at must be an RFC 3339 time")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("expired-at must be an RFC 3339 time") from None
        if parsed.tzinfo is None:
            raise InvalidInput("expired-at needs a time zone (for example 2030-01-01T00:00:00Z)")
        requested = parsed.astimezone(UTC).replace(tzinfo=None)  # naive UTC, as the columns store times
        if requested <= utcnow() + timedelta(seconds=1):
            raise InvalidInput("expired-at must be in the future")
    own = get_token(principal.token_id) if principal.token_id else None
    ceiling = own.expires_at if own is not None else None
    if ceiling is not None and (requested is None or requested > ceiling):
        return ceiling
    return requested


def description_of(attributes: dict[str, object], *, required: bool = False) -> str:
    """``description``: a string of at most 255 characters (``required``: not empty)."""
    description = attributes.get("description") or ""
    if not isinstance(description, str) or len(description) > 255:
        raise InvalidInput("description must be a string of at most 255 characters")
    if required and not description.strip():
        raise InvalidInput("data.attributes.description is required")
    return description
