"""Plans and applies (TFE ``plans``, ``applies``): show, the log stream, and the JSON plan.

A phase's ``log-read-url`` is ``<api>/plans/<id>/logs/<token>``: the token in the path is the grant, because
go-tfe's log reader replaces the query string with ``limit`` and ``offset``. The log is served as TFE's archivist
serves it: STX first, the text, and ETX once the phase has ended; the reader stops at ETX.
"""

from __future__ import annotations

from flask import Response, request

from app.auth.signed_urls import verify_path_token
from app.core.errors import InvalidInput, NotFound
from app.models import Run
from app.repositories import runs
from app.tfc_api.blueprint import bp
from app.tfc_api.jsonapi import document
from app.tfc_api.lookup import find_run_by_apply, find_run_by_plan
from app.tfc_api.run_documents import log_path, render_phase

# go-tfe asks for the size of its read buffer (64 KiB in Terraform); larger asks are served in parts.
MAX_LOG_READ = 1024 * 1024


@bp.route("/plans/<plan_id>")
def show_plan(plan_id: str) -> Response:
    """One plan: status, resource counts and a fresh log URL."""
    _, run = find_run_by_plan(plan_id)
    return document(render_phase(run, "plan"))


@bp.route("/applies/<apply_id>")
def show_apply(apply_id: str) -> Response:
    """One apply: status, resource counts and a fresh log URL."""
    _, run = find_run_by_apply(apply_id)
    return document(render_phase(run, "apply"))


@bp.route("/plans/<plan_id>/logs/<token>")
def plan_log(plan_id: str, token: str) -> Response:
    """The plan's log from ``offset``, at most ``limit`` bytes (the token is the grant; no Authorization needed)."""
    verify_path_token("GET", log_path("plan", plan_id), token)
    return _log(runs.get_run_by_plan(plan_id), "plan", plan_id)


@bp.route("/applies/<apply_id>/logs/<token>")
def apply_log(apply_id: str, token: str) -> Response:
    """The apply's log, as the plan's."""
    verify_path_token("GET", log_path("apply", apply_id), token)
    return _log(runs.get_run_by_apply(apply_id), "apply", apply_id)


def _log(run: Run | None, phase: str, phase_id: str) -> Response:
    if run is None:
        raise NotFound(f"{phase} {phase_id!r} not found")
    offset, limit = _window()
    body = runs.read_log(run, phase, offset, limit)
    return Response(body, mimetype="text/plain", headers={"Cache-Control": "no-store"})


def _window() -> tuple[int, int]:
    """``offset`` (default 0) and ``limit`` (default and at most ``MAX_LOG_READ``) of a log read."""
    values = []
    for name, default in (("offset", 0), ("limit", MAX_LOG_READ)):
        raw = request.args.get(name, "")
        if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            raise InvalidInput(f"{name} must be a non-negative integer")
        values.append(int(raw) if raw else default)
    return values[0], min(values[1], MAX_LOG_READ)


@bp.route("/plans/<plan_id>/json-output")
def plan_json_output(plan_id: str) -> Response:
    """``terraform show -json`` of the saved plan (needs read permission: it shows values from the state)."""
    _, run = find_run_by_plan(plan_id)
    body = runs.plan_json(run)
    if body is None:
        raise NotFound(f"plan {plan_id!r} has no JSON output yet: the plan has not finished")
    return Response(body, mimetype="application/json", headers={"Cache-Control": "no-store"})
