"""Attribute schemas of request bodies (marshmallow, at the API edge only). Unknown attributes are ignored:
clients send many we do not model (pytfe adds ``vcs-repo`` and ``setting-overwrites`` to every create)."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

TAG_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9:_-]{0,253}[A-Za-z0-9])?$"
TAG_RULE = "tags are 1-255 letters, digits, colons, hyphens and underscores, starting and ending with a letter or digit"
_NO_REMOTE = 'remote execution is not available on this server: workspaces run locally (execution-mode "local")'


class _Attributes(Schema):
    class Meta:
        unknown = EXCLUDE


def _tag() -> fields.String:
    return fields.String(validate=validate.Regexp(TAG_PATTERN, error=TAG_RULE))


class WorkspaceAttributes(_Attributes):
    """``workspaces`` create and update attributes."""

    name = fields.String()
    terraform_version = fields.String(data_key="terraform-version", validate=validate.Length(1, 40))
    execution_mode = fields.String(data_key="execution-mode", allow_none=True)
    operations = fields.Boolean()
    auto_apply = fields.Boolean(data_key="auto-apply")
    working_directory = fields.String(data_key="working-directory", allow_none=True, validate=validate.Length(max=255))
    tag_names = fields.List(_tag(), data_key="tag-names")

    @validates("execution_mode")
    def _local_only(self, value: str | None, **_: Any) -> None:
        if value not in (None, "local"):
            raise ValidationError(_NO_REMOTE)

    @validates("operations")
    def _no_operations(self, value: bool, **_: Any) -> None:
        if value:
            raise ValidationError(_NO_REMOTE)


class StateVersionAttributes(_Attributes):
    """``state-versions`` create: inline ``state`` (base64), or none for the upload-URL flow; the JSON copies
    (base64) Terraform sends beside it."""

    serial = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    md5 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-fA-F]{32}$", error="not a hex MD5"))
    lineage = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255))
    state = fields.String(load_default=None, allow_none=True)
    force = fields.Boolean(load_default=False)
    json_state = fields.String(data_key="json-state", load_default=None, allow_none=True)
    json_state_outputs = fields.String(data_key="json-state-outputs", load_default=None, allow_none=True)


class OrganizationAttributes(_Attributes):
    """``organizations`` create and update attributes (``email`` and the rest are accepted and ignored)."""

    name = fields.String()


def load(schema: Schema, attributes: dict[str, Any]) -> dict[str, Any]:
    """Validated attributes (``ValidationError`` becomes a 422)."""
    loaded: dict[str, Any] = schema.load(attributes)
    return loaded
