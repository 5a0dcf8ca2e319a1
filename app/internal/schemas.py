"""Request validation for the management API (marshmallow, at the API edge only).

Unknown fields are ignored: the web UI may send more than we read, and it must keep working.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from app.core import policy
from app.core.errors import InvalidInput

EXECUTION_MODES = ("local", "remote", "agent")
_TOKEN = r"^[A-Za-z0-9][A-Za-z0-9._:@|+-]{0,254}$"
_ENGINE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$"


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class OrgSync(_Base):
    name = fields.String(required=True, validate=validate.Length(1, 255))
    display_name = fields.String(required=True, validate=validate.Length(0, 255))
    external_org_id = fields.String(required=True, validate=validate.Regexp(_TOKEN, error="not a valid external id"))


class OrgCreate(_Base):
    name = fields.String(required=True, validate=validate.Length(1, 255))
    display_name = fields.String(load_default="", allow_none=True, validate=validate.Length(0, 255))
    external_org_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(_TOKEN, error="not a valid external id")
    )


class UserCreate(_Base):
    subject = fields.String(required=True, validate=validate.Length(1, 255))
    email = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 255))
    role_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 90))


class UnitSettings(_Base):
    tfe_auto_apply = fields.Boolean(load_default=None, allow_none=True)
    tfe_execution_mode = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(EXECUTION_MODES))
    tfe_terraform_version = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 40))
    tfe_engine = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(_ENGINE, error="not a valid engine name")
    )
    tfe_working_directory = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 255))


class UnitCreate(UnitSettings):
    name = fields.String(required=True, validate=validate.Length(1, 255))


class LockRequest(_Base):
    id = fields.String(load_default=None, allow_none=True)  # the lock ID rule is checked by the repository
    who = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 255))
    version = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 64))


class UnlockRequest(_Base):
    id = fields.String(load_default=None, allow_none=True)


class Restore(_Base):
    timestamp = fields.String(load_default=None, allow_none=True)
    version_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 40))
    lock_id = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def one_of(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("timestamp") and not data.get("version_id"):
            raise ValidationError('send "timestamp" (as listed by /versions) or "version_id"')


class RoleCreate(_Base):
    name = fields.String(required=True, validate=validate.Length(1, 90))
    description = fields.String(load_default="", allow_none=True, validate=validate.Length(0, 255))
    permissions = fields.List(fields.String(validate=validate.Length(1, 90)), load_default=list)


class PermissionCreate(_Base):
    name = fields.String(required=True, validate=validate.Length(1, 90))
    description = fields.String(load_default="", allow_none=True, validate=validate.Length(0, 255))
    rules = fields.List(fields.Dict(), required=True)


class Attach(_Base):
    permission_id = fields.String(required=True, validate=validate.Length(1, 90))


class Assignment(_Base):
    subject = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 255))
    email = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 255))
    role_id = fields.String(required=True, validate=validate.Length(1, 90))

    @validates_schema
    def who(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("subject") and not data.get("email"):
            raise ValidationError('send "subject" or "email"')


class PermissionTest(_Base):
    subject = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 255))
    email = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 255))
    action = fields.String(required=True, validate=validate.OneOf(policy.ACTIONS))
    resource = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 90))


class UnitList(_Base):
    prefix = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 90))


class AuditQuery(_Base):
    unit = fields.String(load_default=None, validate=validate.Length(1, 90))
    user = fields.String(load_default=None, validate=validate.Length(1, 255))
    action = fields.String(load_default=None, validate=validate.Length(1, 64))
    since = fields.String(load_default=None)
    until = fields.String(load_default=None)


def parse_timestamp(value: str, field: str) -> datetime:
    """An RFC 3339 / ISO 8601 time as naive UTC (the stored form); no offset means UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is not None:
            # 9999-12-31T23:59:59-23:59 is a valid time whose UTC is past the largest datetime
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{field}: not an RFC 3339 time such as 2026-01-31T12:00:00.000000Z") from None
    return parsed
