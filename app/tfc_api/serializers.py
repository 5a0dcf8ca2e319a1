"""Our rows as the JSON:API resources TFE clients expect (type names exactly as go-tfe checks them)."""

from __future__ import annotations

from typing import Any

from app.auth.permissions import Action
from app.auth.principal import Principal
from app.core.errors import NotFound
from app.core.locks import HeldLock
from app.extensions import config
from app.models import AgentPool, ApiToken, ConfigurationVersion, Organization, Run, StateVersion, Workspace
from app.tfc_api.context import principal_user_id
from app.tfc_api.jsonapi import Resource, ref, resource, rfc3339
from app.tfc_api.lookup import VISIBLE, access

DEFAULT_PROJECT_NAME = "Default Project"


def user_resource(principal: Principal) -> Resource:
    """``users``: the caller (an organization token appears as a service account)."""
    service = principal.user_id is None and not principal.superuser
    return resource(
        "users",
        principal_user_id(principal),
        {
            "username": principal.subject,
            "email": principal.email or "",
            "is-service-account": service,
            "is-site-admin": principal.superuser,
            "auth-method": principal.kind,
            "avatar-url": "",
            "v2-only": True,
            "two-factor": {"enabled": False, "verified": False},
            "permissions": {
                "can-create-organizations": principal.superuser,
                "can-change-email": False,
                "can-change-username": False,
                # a user's API token manages that user's tokens (authentication_tokens.py)
                "can-manage-user-tokens": principal.kind == "token" and principal.user_id is not None,
            },
        },
    )


def org_resource(org: Organization) -> Resource:
    """``organizations``: the id is the name, as in TFE; ``external-id`` is our immutable ``org-...`` id."""
    manage = access(org).allows(Action.MANAGE, None)
    return resource(
        "organizations",
        org.name,
        {
            "name": org.name,
            "external-id": org.id,
            "display-name": org.display_name,
            "email": None,
            "created-at": rfc3339(org.created_at),
            "default-execution-mode": "local",
            "collaborator-auth-policy": "password",
            "cost-estimation-enabled": False,
            "saml-enabled": False,
            "two-factor-conformant": True,
            "permissions": {
                "can-update": manage,
                "can-destroy": manage,
                "can-create-workspace": access(org).allows(Action.WRITE, None),
                "can-create-team": False,
                "can-manage-users": manage,
            },
        },
        {"default-project": ref("projects", default_project_id(org))},
    )


def entitlements_resource(org: Organization) -> Resource:
    """``entitlement-sets``: state storage yes, remote operations only when runs exist."""
    flags = (
        "agents",
        "audit-logging",
        "cost-estimation",
        "private-module-registry",
        "run-tasks",
        "sentinel",
        "sso",
        "teams",
        "vcs-integrations",
        "usage-reporting",
        "self-serve-billing",
        "configuration-designer",
    )
    attributes: dict[str, Any] = dict.fromkeys(flags, False)
    runs = config().runs_enabled
    attributes.update({"operations": runs, "agents": runs, "state-storage": True, "private-run-tasks": False})
    return resource("entitlement-sets", org.id, attributes)


def default_project_id(org: Organization) -> str:
    """The id of the one project each organization has (projects are synthesized, not stored)."""
    return "prj-" + org.id.removeprefix("org-")


def org_id_of_project(project_id: str) -> str:
    """The organization id a synthesized project id stands for; ``NotFound`` when it is not one."""
    if not project_id.startswith("prj-") or len(project_id) <= 4:
        raise NotFound(f"project {project_id!r} not found")
    return "org-" + project_id.removeprefix("prj-")


def project_resource(org: Organization, workspace_count: int) -> Resource:
    """``projects``: the organization's default project."""
    return resource(
        "projects",
        default_project_id(org),
        {
            "name": DEFAULT_PROJECT_NAME,
            "description": "Every workspace of the organization (this server keeps one project per organization)",
            "created-at": rfc3339(org.created_at),
            "workspace-count": workspace_count,
            "default-execution-mode": "local",
            "permissions": {
                "can-read": True,
                "can-update": False,
                "can-destroy": False,
                "can-create-workspace": access(org).allows(Action.WRITE, None),
            },
        },
        {"organization": ref("organizations", org.name)},
    )


def workspace_permissions(org: Organization, name: str) -> dict[str, bool]:
    """The caller's permissions on a workspace, from the same check every request passes."""
    caller = access(org)
    read, write = caller.allows(Action.READ, name), caller.allows(Action.WRITE, name)
    lock, delete = caller.allows(Action.LOCK, name), caller.allows(Action.DELETE, name)
    visible = caller.allows(VISIBLE, name)
    runs = write and config().runs_enabled
    return {
        "can-update": write,
        "can-destroy": delete,
        "can-force-delete": delete,
        "can-queue-run": runs,
        "can-queue-apply": runs,
        "can-queue-destroy": runs,
        "can-read-run": read,
        "can-lock": lock,
        "can-unlock": lock,
        "can-force-unlock": lock and config().force_unlock_enabled,
        "can-read-settings": visible,
        "can-update-variable": write,
        "can-read-variable": read,
        "can-read-state-versions": read,
        "can-read-state-outputs": visible,
        "can-create-state-versions": write,
        "can-manage-tags": write,
        "can-manage-run-tasks": False,
        "can-read-assessment-results": False,
        "can-manage-assessments": False,
    }


def execution_mode(workspace: Workspace) -> str:
    """What the workspace runs as: its setting, or ``local`` whatever it says while remote runs are disabled."""
    return workspace.execution_mode if config().runs_enabled else "local"


def workspace_resource(
    workspace: Workspace,
    current: StateVersion | None,
    holder: HeldLock | None,
    tag_names: list[str],
    locked_by: dict[str, Any] | None = None,
    locked_reason: str = "",
    current_run_id: str | None = None,
) -> Resource:
    """``workspaces`` with every attribute the remote backend, the cloud block and the SDKs read.

    ``tag_names`` are the workspace's tag keys (``app.repositories.tags.tag_keys``); ``locked_by`` is the
    relationship to the lock's holder (a user or a run); ``operations`` is the older name of
    "executes remotely" (Terraform 1.0.3 reads it), so it is true for ``remote`` and ``agent`` alike.
    """
    org = workspace.organization
    mode = execution_mode(workspace)
    pool = workspace.agent_pool_id if mode == "agent" else None
    resources = current.resource_count if current else 0
    return resource(
        "workspaces",
        workspace.id,
        {
            "name": workspace.name,
            "execution-mode": mode,
            "operations": mode != "local",
            "terraform-version": workspace.terraform_version or "latest",
            "locked": holder is not None,
            "locked-reason": locked_reason,
            "permissions": workspace_permissions(org, workspace.name),
            "actions": {"is-destroyable": True},
            "auto-apply": workspace.auto_apply,
            "working-directory": workspace.working_directory or "",
            "tag-names": tag_names,
            "resource-count": resources,
            "created-at": rfc3339(workspace.created_at),
            "updated-at": rfc3339(workspace.updated_at),
            "latest-change-at": rfc3339(workspace.updated_at),
            "description": "",
            "environment": "default",
            "source": "tfe-api",
            "allow-destroy-plan": True,
            "file-triggers-enabled": False,
            "queue-all-runs": False,
            "speculative-enabled": False,
            "global-remote-state": False,
            # Logs are Terraform's plain text: the cloud block then prints them as they are.
            "structured-run-output-enabled": False,
            "agent-pool-id": pool,
            "trigger-prefixes": [],
            "trigger-patterns": [],
            "setting-overwrites": {"execution-mode": False, "agent-pool": False},
        },
        {
            "organization": ref("organizations", org.name),
            "project": ref("projects", default_project_id(org)),
            "current-state-version": ref("state-versions", current.id if current else None),
            "current-run": ref("runs", current_run_id),
            "locked-by": locked_by or ref("users", None),
            "agent-pool": ref("agent-pools", pool),
        },
    )


def state_version_resource(version: StateVersion, urls: dict[str, str | None]) -> Resource:
    """``state-versions``: metadata of one immutable version; ``urls`` holds the hosted download/upload URLs."""
    attributes: dict[str, Any] = {
        "serial": version.serial,
        "lineage": version.lineage,
        "md5": version.md5,
        "size": version.size,
        "status": version.status,
        "created-at": rfc3339(version.created_at),
        "resources-processed": version.status == "finalized",
        "terraform-version": version.terraform_version or "",
        "hosted-state-download-url": None,
        "hosted-json-state-download-url": None,
    }
    attributes.update(urls)
    outputs = [{"id": output_id(version.id, name), "type": "state-version-outputs"} for name in (version.outputs or {})]
    return resource(
        "state-versions",
        version.id,
        attributes,
        {
            "workspace": ref("workspaces", version.workspace_id),
            "run": ref("runs", version.run_id),
            "outputs": {"data": outputs},
        },
    )


def output_id(version_id: str, name: str) -> str:
    """``wsout-...``: outputs are not rows, so the id carries the version and the (hex) output name."""
    return f"wsout-{version_id.removeprefix('sv-')}-{name.encode().hex()}"


def parse_output_id(value: str) -> tuple[str, str]:
    """The version id and output name of an output id; ``NotFound`` when it is not one of ours."""
    version_part, _, name_hex = value.removeprefix("wsout-").rpartition("-")
    try:
        name = bytes.fromhex(name_hex).decode()
    except (ValueError, UnicodeDecodeError):
        raise NotFound(f"state version output {value!r} not found") from None
    if not value.startswith("wsout-") or not version_part or not name:
        raise NotFound(f"state version output {value!r} not found")
    return f"sv-{version_part}", name


def output_resource(version: StateVersion, name: str, spec: dict[str, Any], reveal: bool) -> Resource:
    """``state-version-outputs``: a sensitive value is ``null`` unless ``reveal``."""
    sensitive = bool(spec.get("sensitive", False))
    detailed = spec.get("type")
    return resource(
        "state-version-outputs",
        output_id(version.id, name),
        {
            "name": name,
            "sensitive": sensitive,
            "type": simple_type(detailed, spec.get("value")),
            "value": spec.get("value") if reveal or not sensitive else None,
            "detailed-type": detailed,
        },
    )


def simple_type(detailed: Any, value: Any) -> str:
    """TFE's coarse output type (``string``, ``number``, ``boolean``, ``array``, ``object``)."""
    if isinstance(detailed, str):
        return {"bool": "boolean"}.get(detailed, detailed)
    if isinstance(detailed, list) and detailed:
        return "array" if detailed[0] in ("list", "tuple", "set") else "object"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "string"


def tag_resource(name: str) -> Resource:
    """``tags``: workspace tags are names; the id is derived from the name."""
    return resource("tags", f"tag-{name}", {"name": name, "instance-count": 1})


def token_resource(token: ApiToken, secret: str | None = None) -> Resource:
    """``authentication-tokens``: a user, organization or agent token (its secret only in the answer that creates
    it)."""
    return resource(
        "authentication-tokens",
        token.id,
        {
            "created-at": rfc3339(token.created_at),
            "last-used-at": rfc3339(token.last_used_at),
            "description": token.description,
            "expired-at": rfc3339(token.expires_at),
            "token": secret,
        },
        {"created-by": ref("users", token.user_id)},
    )


def agent_pool_resource(pool: AgentPool, org: Organization) -> Resource:
    """``agent-pools``: every pool serves the whole organization (no workspace allow-list)."""
    return resource(
        "agent-pools",
        pool.id,
        {
            "name": pool.name,
            "created-at": rfc3339(pool.created_at),
            "organization-scoped": True,
            "agent-count": 0,
        },
        {
            "organization": ref("organizations", org.name),
            "workspaces": {"data": []},
            "allowed-workspaces": {"data": []},
        },
    )


def configuration_version_resource(version: ConfigurationVersion, upload_url: str | None = None) -> Resource:
    """``configuration-versions``; ``upload_url`` only in the answers that may hand out the write grant."""
    stamps = {"queued-at": rfc3339(version.created_at)}
    if version.uploaded_at is not None:
        stamps["uploaded-at"] = rfc3339(version.uploaded_at)
    attributes: dict[str, Any] = {
        "auto-queue-runs": version.auto_queue_runs,
        "error": "invalid-archive" if version.status == "errored" else None,
        "error-message": version.error_message,
        "source": "tfe-api",
        "speculative": version.speculative,
        "status": version.status,
        "status-timestamps": stamps,
        "provisional": False,
    }
    if upload_url is not None:
        attributes["upload-url"] = upload_url
    return resource(
        "configuration-versions",
        version.id,
        attributes,
        {"ingress-attributes": ref("ingress-attributes", None), "workspace": ref("workspaces", version.workspace_id)},
    )


def run_resource(run: Run, facts: dict[str, Any]) -> Resource:
    """``runs``; ``facts`` holds what other rows and the caller decide: ``actions``, ``permissions``,
    ``position-in-queue``, ``variables`` and ``created-by`` (a users id)."""
    attributes: dict[str, Any] = {
        "status": run.status,
        "status-timestamps": dict(run.status_timestamps or {}),
        "has-changes": run.has_changes,
        "is-destroy": run.is_destroy,
        "message": run.message,
        "plan-only": run.plan_only,
        "auto-apply": run.auto_apply,
        "refresh": run.refresh,
        "refresh-only": run.refresh_only,
        "target-addrs": list(run.target_addrs or []) or None,
        "replace-addrs": list(run.replace_addrs or []) or None,
        "save-plan": False,
        "allow-empty-apply": False,
        "allow-config-generation": False,
        "source": "tfe-api",
        "trigger-reason": "manual",
        "terraform-version": run.terraform_version,
        "created-at": rfc3339(run.created_at),
        "force-cancel-available-at": rfc3339(run.cancel_requested_at),
        # not a TFE attribute: why a run errored when its log cannot say (an agent that went away)
        "error-message": run.error_message,
        **facts,
    }
    return resource(
        "runs",
        run.id,
        {key: value for key, value in attributes.items() if key != "created-by"},
        {
            "workspace": ref("workspaces", run.workspace_id),
            "configuration-version": ref("configuration-versions", run.configuration_version_id),
            "plan": ref("plans", run.plan_id),
            "apply": ref("applies", run.apply_id),
            "created-by": ref("users", facts.get("created-by")),
            # No cost estimation, policy checks or run tasks: Terraform skips each phase when these are empty.
            "cost-estimate": ref("cost-estimates", None),
            "policy-checks": {"data": []},
            "task-stages": {"data": []},
            "run-events": {"data": []},
            "comments": {"data": []},
        },
    )


# A phase's TFE timestamps, from the run's status timestamps (the first one present wins).
_PHASE_STAMPS: dict[str, dict[str, tuple[str, ...]]] = {
    "plan": {
        "queued-at": ("plan-queued-at",),
        "started-at": ("planning-at",),
        "finished-at": ("planned-at", "planned-and-finished-at"),
    },
    "apply": {"queued-at": ("apply-queued-at",), "started-at": ("applying-at",), "finished-at": ("applied-at",)},
}


def phase_resource(run: Run, phase: str, log_url: str) -> Resource:
    """``plans`` or ``applies``: the phase's status, resource counts and the URL its log streams from."""
    status = run.plan_status if phase == "plan" else run.apply_status
    attributes: dict[str, Any] = {
        "status": status,
        "status-timestamps": _phase_stamps(run, phase, status),
        "log-read-url": log_url,
        "resource-additions": run.resource_additions,
        "resource-changes": run.resource_changes,
        "resource-destructions": run.resource_destructions,
        "resource-imports": run.resource_imports,
    }
    if phase == "plan":
        attributes.update({"has-changes": run.has_changes, "generated-configuration": False})
    kind, id_ = ("plans", run.plan_id) if phase == "plan" else ("applies", run.apply_id)
    return resource(kind, id_, attributes, {"run": ref("runs", run.id)})


def _phase_stamps(run: Run, phase: str, status: str) -> dict[str, str]:
    stamps = run.status_timestamps or {}
    found = {name: next((stamps[k] for k in keys if k in stamps), None) for name, keys in _PHASE_STAMPS[phase].items()}
    if status in ("errored", "canceled"):
        found[f"{status}-at"] = stamps.get(f"{status}-at")
    if status == "canceled" and run.force_canceled_at is not None:
        found["force-canceled-at"] = rfc3339(run.force_canceled_at)
    return {name: moment for name, moment in found.items() if moment}


def subject_user_resource(user_id: str, subject: str) -> Resource:
    """``users`` for a run's creator, known only by id and subject (no permissions: it is not the caller)."""
    return resource("users", user_id, {"username": subject, "is-service-account": False, "avatar-url": ""})


def capacity_resource(org: Organization, pending: int, running: int) -> Resource:
    """``organization-capacity``: runs waiting for an agent and runs executing (Terraform's queue message)."""
    return resource("organization-capacity", org.name, {"pending": pending, "running": running})
