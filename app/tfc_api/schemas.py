"""Attribute schemas of request bodies (marshmallow, at the API edge only). Unknown attributes are ignored:
clients send many we do not model (pytfe adds ``vcs-repo`` and ``setting-overwrites`` to every create)."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from app.core.errors import InvalidInput
from app.extensions import config
from app.repositories.tags import KEY_PATTERN, KEY_RULE, check_key, check_value

_NO_REMOTE = (
    "remote execution is not available on this server (RUNS_ENABLED=false): workspaces run locally "
    '(execution-mode "local")'
)
EXECUTION_MODES = ("local", "remote", "agent")


class _Attributes(Schema):
    class Meta:
        unknown = EXCLUDE


def _tag() -> fields.String:
    return fields.String(validate=validate.Regexp(KEY_PATTERN, error=KEY_RULE))


class WorkspaceAttributes(_Attributes):
    """``workspaces`` create and update attributes."""

    name = fields.String()
    terraform_version = fields.String(data_key="terraform-version", validate=validate.Length(1, 40))
    execution_mode = fields.String(data_key="execution-mode", allow_none=True)
    operations = fields.Boolean()
    agent_pool_id = fields.String(data_key="agent-pool-id", allow_none=True)
    auto_apply = fields.Boolean(data_key="auto-apply")
    working_directory = fields.String(data_key="working-directory", allow_none=True, validate=validate.Length(max=255))
    tag_names = fields.List(_tag(), data_key="tag-names")

    @validates("execution_mode")
    def _known_mode(self, value: str | None, **_: Any) -> None:
        if value is None or value == "local":
            return
        if not config().runs_enabled:
            raise ValidationError(_NO_REMOTE)
        if value not in EXECUTION_MODES:
            raise ValidationError(f"must be one of {', '.join(EXECUTION_MODES)}")

    @validates("operations")
    def _no_operations(self, value: bool, **_: Any) -> None:
        if value and not config().runs_enabled:
            raise ValidationError(_NO_REMOTE)


class RunVariable(_Attributes):
    """One run variable: a Terraform variable's name and its value as an HCL expression."""

    key = fields.String(required=True)
    value = fields.String(required=True)


class RunAttributes(_Attributes):
    """``runs`` create attributes (go-tfe omits unset ones; some SDKs send ``null``, which means the default)."""

    message = fields.String(allow_none=True)
    is_destroy = fields.Boolean(data_key="is-destroy", allow_none=True)
    refresh = fields.Boolean(allow_none=True)
    refresh_only = fields.Boolean(data_key="refresh-only", allow_none=True)
    plan_only = fields.Boolean(data_key="plan-only", allow_none=True)
    save_plan = fields.Boolean(data_key="save-plan", allow_none=True)
    auto_apply = fields.Boolean(data_key="auto-apply", allow_none=True)
    target_addrs = fields.List(fields.String(), data_key="target-addrs", allow_none=True)
    replace_addrs = fields.List(fields.String(), data_key="replace-addrs", allow_none=True)
    variables = fields.List(fields.Nested(RunVariable), allow_none=True)
    terraform_version = fields.String(data_key="terraform-version", allow_none=True)


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


def relationship_id(body: dict[str, Any], name: str) -> str | None:
    """``data.relationships.<name>.data.id``, or None when the body does not name one."""
    data = body.get("data")
    relationships = data.get("relationships") if isinstance(data, dict) else None
    related = relationships.get(name) if isinstance(relationships, dict) else None
    if related is None or (isinstance(related, dict) and related.get("data") is None):
        return None
    found = related.get("data") if isinstance(related, dict) else None
    if not isinstance(found, dict) or not isinstance(found.get("id"), str) or not found["id"]:
        raise InvalidInput(f'"data.relationships.{name}.data" must be {{"type": ..., "id": "..."}} or null')
    return str(found["id"])


def relationship_list(body: dict[str, Any], name: str) -> list[Any] | None:
    """``data.relationships.<name>.data`` as a list, or None when the body does not mention it."""
    data = body.get("data")
    relationships = data.get("relationships") if isinstance(data, dict) else None
    if not isinstance(relationships, dict) or name not in relationships:
        return None
    found = relationships[name].get("data") if isinstance(relationships[name], dict) else None
    if not isinstance(found, list):
        raise InvalidInput(f'"data.relationships.{name}.data" must be a list')
    return found


def plain_tags(items: list[Any]) -> list[str]:
    """Tag names from ``[{"type":"tags","attributes":{"name"}} | {"type":"tags","id":"tag-<name>"}]``."""
    names = []
    for item in items:
        attributes = item.get("attributes") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not isinstance(attributes, (dict, type(None))):
            raise InvalidInput('each tag must be {"type":"tags","attributes":{"name":...}} or {"type":"tags","id":...}')
        name = (attributes or {}).get("name")
        if not name and isinstance(item.get("id"), str):
            name = item["id"].removeprefix("tag-")
        names.append(check_key(name))
    return list(dict.fromkeys(names))


def tag_bindings(items: list[Any]) -> dict[str, str]:
    """Key/value pairs from ``[{"type":"tag-bindings","attributes":{"key","value"}}]``."""
    bindings: dict[str, str] = {}
    for item in items:
        attributes = item.get("attributes") if isinstance(item, dict) else None
        if not isinstance(attributes, dict):
            raise InvalidInput('each tag binding must be {"type":"tag-bindings","attributes":{"key":...,"value":...}}')
        bindings[check_key(attributes.get("key"))] = check_value(attributes.get("value"))
    return bindings
