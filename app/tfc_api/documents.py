"""Resources built from several rows: a workspace with its current version, lock and run, a version's outputs.

Shared by the resource modules that answer with them (workspaces, locks, state versions, outputs), so no view module
imports another.
"""

from __future__ import annotations

from typing import Any

from app.core.locks import HeldLock
from app.extensions import config
from app.models import Run, StateVersion, Workspace
from app.repositories import runs
from app.repositories.locks import get_lock, get_locks, lock_details
from app.repositories.state_versions import get_current_version, get_versions_by_ids, read_outputs
from app.repositories.tags import tag_keys
from app.tfc_api.jsonapi import Resource, ref
from app.tfc_api.locking import LOCK_ID_PREFIX
from app.tfc_api.serializers import output_resource, workspace_resource


def render_workspace(workspace: Workspace) -> Resource:
    """One workspace with its current version, lock and current run."""
    active = runs.current_run(workspace) if config().runs_enabled else None
    return _resource(workspace, get_current_version(workspace), get_lock(workspace), active)


def render_workspaces(workspaces: list[Workspace]) -> list[Resource]:
    """Several workspaces, their current versions, locks and current runs fetched for the whole page at once."""
    versions = get_versions_by_ids([w.current_version_id for w in workspaces if w.current_version_id])
    active = runs.current_runs(workspaces) if config().runs_enabled else {}
    held = get_locks(workspaces)
    return [
        _resource(w, versions.get(w.current_version_id or ""), held.get(w.id), active.get(w.id)) for w in workspaces
    ]


def _resource(
    workspace: Workspace, current: StateVersion | None, holder: HeldLock | None, active: Run | None
) -> Resource:
    info = lock_details(holder) if holder else {}
    locked_by = _locked_by(workspace, holder, info)
    reason = str(info.get("Info") or "")
    tags = tag_keys(workspace)
    return workspace_resource(workspace, current, holder, tags, locked_by, reason, active.id if active else None)


def _locked_by(workspace: Workspace, holder: HeldLock | None, info: dict[str, Any]) -> dict[str, Any]:
    """The lock holder as TFE names it: the run that took the lock (its ID is the run's id), else the user."""
    if holder is None:
        return ref("users", None)
    if holder.lock_id.startswith(LOCK_ID_PREFIX):
        return ref("users", info.get("UserID"))
    run = runs.get_run(holder.lock_id) if holder.lock_id.startswith("run-") else None
    return ref("runs", run.id if run is not None and run.workspace_id == workspace.id else None)


def output_resources(version: StateVersion, reveal: bool = False) -> list[Resource]:
    """Every output of a finalized version (sensitive values hidden unless ``reveal``)."""
    if version.status != "finalized":
        return []
    return [
        output_resource(version, name, exact_type(version, name, spec), reveal)
        for name, spec in read_outputs(version).items()
        if isinstance(spec, dict)
    ]


def exact_type(version: StateVersion, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The output with the type from the version's summary, which holds Terraform's JSON-outputs type when sent."""
    summary = (version.outputs or {}).get(name)
    detailed = summary.get("type") if isinstance(summary, dict) else None
    return {**spec, "type": detailed} if detailed is not None else spec
