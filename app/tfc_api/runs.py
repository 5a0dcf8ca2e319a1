"""Runs (TFE ``runs``): create, show, list, the queue, and the apply, discard, cancel and force-cancel actions.

Terraform's remote backend and cloud block create a run from the configuration version they just uploaded, poll
it until it leaves ``pending``, stream the plan's log, and confirm with ``actions/apply`` when the run waits for
it. A run is plan-only when asked, or when its configuration version is speculative (``terraform plan``: neither
client sends ``plan-only``). Terraform never waits on cost estimates, policy checks or run tasks when a run has
none, so those lists are empty. Every action answers 202 with no body, as TFE does; one in the wrong state is 409.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from marshmallow import ValidationError

from app.auth.access import Target
from app.auth.permissions import Action
from app.core.errors import Conflict, InvalidInput, NotFound
from app.models import ConfigurationVersion, Run
from app.repositories import runs
from app.repositories.configuration_versions import get_configuration_version, list_configuration_versions
from app.tfc_api.blueprint import bp
from app.tfc_api.jsonapi import (
    attributes_of,
    collection,
    document,
    paginate,
    request_body,
    requested_page,
    respond,
)
from app.tfc_api.lookup import find_org, find_run, find_workspace_by_id
from app.tfc_api.run_documents import render_run, render_runs
from app.tfc_api.schemas import RunAttributes, load, relationship_id
from app.tfc_api.serializers import capacity_resource

MAX_COMMENT = 1000


@bp.route("/runs", methods=["POST"])
def create_run() -> Response:
    """Queue a run of the workspace's configuration version (201); it starts when the runs before it end."""
    body = request_body()
    attributes = load(RunAttributes(), attributes_of(body))
    workspace_id = relationship_id(body, "workspace")
    if workspace_id is None:
        raise InvalidInput('a run needs "data.relationships.workspace"')
    target = find_workspace_by_id(workspace_id, Action.WRITE)
    version = _configuration_version(target, relationship_id(body, "configuration-version"))
    run = runs.create_run(target, version, _options(target, attributes))
    return _run_document(target, run, 201)


def _configuration_version(target: Target, version_id: str | None) -> ConfigurationVersion:
    """The version named, or else the workspace's newest (TFE's rule when the relationship is left out)."""
    if version_id is None:
        newest, _ = list_configuration_versions(target.workspace, 0, 1)
        if not newest:
            raise Conflict(f"workspace {target.workspace.name!r} has no configuration version: upload one first")
        return newest[0]
    version = get_configuration_version(version_id)
    if version is None or version.workspace_id != target.workspace.id:
        raise NotFound(f"configuration version {version_id!r} not found")
    return version


def _options(target: Target, attributes: dict[str, Any]) -> runs.RunOptions:
    """The run's options; ``save-plan`` (``terraform plan -out`` with the cloud block) is a run that waits to be
    confirmed, never auto-applied: ``terraform apply <saved plan>`` later confirms it, so it cannot be plan-only."""
    _check_version(target, attributes.get("terraform_version"))
    save_plan = bool(attributes.get("save_plan"))
    if save_plan and attributes.get("plan_only"):
        raise ValidationError({"save-plan": ["a saved plan is applied later, so it cannot be plan-only"]})
    variables = attributes.get("variables") or []
    return runs.RunOptions(
        message=attributes.get("message") or "",
        is_destroy=bool(attributes.get("is_destroy")),
        refresh=attributes.get("refresh") is not False,
        refresh_only=bool(attributes.get("refresh_only")),
        plan_only=bool(attributes.get("plan_only")),
        auto_apply=False if save_plan else attributes.get("auto_apply"),
        target_addrs=tuple(attributes.get("target_addrs") or ()),
        replace_addrs=tuple(attributes.get("replace_addrs") or ()),
        variables=tuple((item["key"], item["value"]) for item in variables),
    )


def _check_version(target: Target, wanted: str | None) -> None:
    """Runs execute the workspace's Terraform version; asking for another one is refused rather than ignored."""
    own = target.workspace.terraform_version or "latest"
    if wanted not in (None, "", own):
        raise ValidationError({"terraform-version": [f"runs use the workspace's Terraform version ({own})"]})


@bp.route("/runs/<run_id>")
def show_run(run_id: str) -> Response:
    """One run, with ``include=workspace,plan,apply,configuration_version,created_by`` as asked."""
    target, run = find_run(run_id)
    return _run_document(target, run)


def _run_document(target: Target, run: Run, status: int = 200) -> Response:
    include = [name.strip() for name in (request.args.get("include") or "").split(",") if name.strip()]
    found, included = render_run(target, run, include)
    payload: dict[str, Any] = {"data": found}
    if include:
        payload["included"] = included
    return respond(payload, status)


@bp.route("/workspaces/<workspace_id>/runs")
def list_workspace_runs(workspace_id: str) -> Response:
    """The workspace's runs, newest first; ``filter[status]`` takes a comma-separated list of statuses."""
    target = find_workspace_by_id(workspace_id, Action.READ)
    page = requested_page()
    wanted = {s.strip() for s in (request.args.get("filter[status]") or "").split(",") if s.strip()}
    found, total = runs.list_runs(target.workspace, page.offset, page.size, wanted or None)
    return collection(render_runs({target.workspace.id: target}, found), page, total)


@bp.route("/organizations/<org>/runs/queue")
def org_run_queue(org: str) -> Response:
    """The organization's runs executing or waiting for an agent, with their ``position-in-queue``."""
    access = find_org(org, Action.READ)
    page = requested_page()
    shown = [run for run in runs.org_queue(access.org) if access.allows(Action.READ, run.workspace.name)]
    targets = {run.workspace_id: Target(access, run.workspace) for run in shown}
    return collection(render_runs(targets, paginate(shown, page)), page, len(shown))


@bp.route("/organizations/<org>/capacity")
def org_capacity(org: str) -> Response:
    """How many of the organization's runs wait for an agent and how many execute."""
    access = find_org(org, Action.READ)
    pending, running = runs.capacity(access.org)
    return document(capacity_resource(access.org, pending, running))


@bp.route("/runs/<run_id>/actions/apply", methods=["POST"])
def apply_run(run_id: str) -> Response:
    """Confirm a planned run (202)."""
    target, run = find_run(run_id, Action.WRITE)
    runs.apply_run(target, run, _comment())
    return respond(None, 202)


@bp.route("/runs/<run_id>/actions/discard", methods=["POST"])
def discard_run(run_id: str) -> Response:
    """Drop a planned run without applying it (202)."""
    target, run = find_run(run_id, Action.WRITE)
    runs.discard_run(target, run, _comment())
    return respond(None, 202)


@bp.route("/runs/<run_id>/actions/cancel", methods=["POST"])
def cancel_run(run_id: str) -> Response:
    """Cancel a waiting run at once, or interrupt an executing one (202)."""
    target, run = find_run(run_id, Action.WRITE)
    runs.cancel_run(target, run, _comment())
    return respond(None, 202)


@bp.route("/runs/<run_id>/actions/force-cancel", methods=["POST"])
def force_cancel_run(run_id: str) -> Response:
    """End an executing run whose cancel was requested, now (202)."""
    target, run = find_run(run_id, Action.WRITE)
    runs.force_cancel_run(target, run, _comment())
    return respond(None, 202)


def _comment() -> str:
    """``{"comment": ...}`` as go-tfe sends it with every action (or nothing)."""
    comment = request_body().get("comment")
    if comment is not None and not isinstance(comment, str):
        raise InvalidInput("comment must be a string")
    return (comment or "")[:MAX_COMMENT]


@bp.route("/runs/<run_id>/run-events")
@bp.route("/runs/<run_id>/policy-checks")
@bp.route("/runs/<run_id>/task-stages")
@bp.route("/runs/<run_id>/cost-estimates")
def run_extras(run_id: str) -> Response:
    """Run events, policy checks, task stages, cost estimates: none exist, so Terraform renders and waits on none."""
    find_run(run_id)
    return collection([], requested_page(), 0)


@bp.route("/runs/<run_id>/cost-estimate")
def run_cost_estimate(run_id: str) -> Response:
    """No cost estimate (``data: null``): Terraform only polls one when the run's relationship names it."""
    find_run(run_id)
    return document(None)
