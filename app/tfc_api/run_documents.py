"""Runs, plans and applies as documents: what the caller may do, the queue position, included resources, log URLs.

Shared by the run, plan and queue views (so no view module imports another). A log URL carries its grant in the
path (``app.auth.signed_urls.path_token``): go-tfe's log reader replaces the query string with ``limit`` and
``offset`` on every read, and sends the caller's Authorization header to it, which the log endpoint ignores.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.auth.access import Target
from app.auth.permissions import Action
from app.auth.signed_urls import path_token
from app.models import Run
from app.repositories import runs
from app.repositories.configuration_versions import get_configuration_version
from app.repositories.users import get_user_by_subject
from app.tfc_api.context import api_base_url, subject_user_id
from app.tfc_api.documents import render_workspace
from app.tfc_api.jsonapi import Resource
from app.tfc_api.serializers import (
    configuration_version_resource,
    phase_resource,
    run_resource,
    subject_user_resource,
)

# A log URL is handed out once per phase and read until the phase ends: it must outlive the wait for an agent and
# the phase itself (RUN_TIMEOUT), so it lasts a day. It grants reading that one log and nothing else.
LOG_URL_TTL_SECONDS = 24 * 60 * 60
PHASE_PATHS = {"plan": "plans", "apply": "applies"}
INCLUDABLE = frozenset({"workspace", "plan", "apply", "configuration_version", "created_by"})


def log_path(phase: str, phase_id: str) -> str:
    """The resource a phase's log URL is signed for (below the API mount)."""
    return f"{PHASE_PATHS[phase]}/{phase_id}/logs"


def render_phase(run: Run, phase: str) -> Resource:
    """``plans`` or ``applies`` with a fresh log URL."""
    path = log_path(phase, run.plan_id if phase == "plan" else run.apply_id)
    url = f"{api_base_url()}/{path}/{path_token('GET', path, LOG_URL_TTL_SECONDS)}"
    return phase_resource(run, phase, url)


def render_run(target: Target, run: Run, include: Iterable[str] = ()) -> tuple[Resource, list[Resource]]:
    """One run and the resources ``include`` asks for (TFE's names: ``workspace``, ``plan``, ``created_by``...)."""
    positions = _positions(target, [run])
    found = run_resource(run, _facts(target, run, positions, {}))
    return found, [resource for name in _includes(include) for resource in _included(run, name)]


def render_runs(targets: dict[str, Target], found: list[Run]) -> list[Resource]:
    """Several runs (``targets``: the caller's access to each run's workspace, by workspace id)."""
    if not found:
        return []
    positions = _positions(targets[found[0].workspace_id], found)
    creators: dict[str, str] = {}
    return [run_resource(run, _facts(targets[run.workspace_id], run, positions, creators)) for run in found]


def _facts(target: Target, run: Run, positions: dict[str, int], creators: dict[str, str]) -> dict[str, Any]:
    write = target.allows(Action.WRITE)
    return {
        "actions": runs.run_actions(run),
        "permissions": {
            "can-apply": write,
            "can-cancel": write,
            "can-discard": write,
            "can-force-cancel": write,
            "can-force-execute": False,  # runs never jump the workspace's queue
        },
        "position-in-queue": positions.get(run.id, 0),
        "variables": _variables(run),
        "created-by": _creator_id(run.created_by, creators),
    }


def _positions(target: Target, found: list[Run]) -> dict[str, int]:
    """Each run's place in its organization's queue (read only when one of ``found`` is in it)."""
    if not any(run.status in (*runs.QUEUED, *runs.EXECUTING) for run in found):
        return {}
    return {run.id: index for index, run in enumerate(runs.org_queue(target.access.org))}


def _variables(run: Run) -> list[dict[str, str]]:
    """The run's own variables with their values (they are the caller's input, never the workspace's secrets)."""
    if not run.variable_keys:
        return []
    return [{"key": key, "value": value} for key, value in runs.run_variables(run)]


def _creator_id(subject: str | None, known: dict[str, str]) -> str | None:
    if subject is None:
        return None
    if subject not in known:
        user = get_user_by_subject(subject)
        known[subject] = user.id if user is not None else subject_user_id(subject)
    return known[subject]


def _includes(include: Iterable[str]) -> list[str]:
    """The known names of an ``include`` list, in order, once each (unknown ones add nothing, as an empty list)."""
    return list(dict.fromkeys(name for name in include if name in INCLUDABLE))


def _included(run: Run, name: str) -> list[Resource]:
    if name == "workspace":
        return [render_workspace(run.workspace)]
    if name in ("plan", "apply"):
        return [render_phase(run, name)]
    if name == "configuration_version":
        version = get_configuration_version(run.configuration_version_id)
        return [configuration_version_resource(version)] if version is not None else []
    creator = _creator_id(run.created_by, {})
    return [subject_user_resource(creator, run.created_by or "")] if creator else []
