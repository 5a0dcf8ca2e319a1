"""``flask runs``: the operator's view of remote runs (list, show with logs, cancel), with every run rule applying."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.cli.admin import OperatorGuard, _actor, _domain_errors, _org, _workspace
from app.core.errors import StatesmanError
from app.models import Run
from app.repositories import runs

runs_cli = AppGroup("runs", help="List, show and cancel remote runs.")
LOG_PAGE = 64 * 1024


@runs_cli.command("list")
@click.option("--org", "org_name", required=True)
@click.option("--workspace", help="Only this workspace's runs.")
@click.option("--status", "statuses", multiple=True, help="Only runs in this status (repeatable).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@_domain_errors
def list_runs(org_name: str, workspace: str | None, statuses: tuple[str, ...], limit: int) -> None:
    """One line per run, newest first: id, workspace, status, created, message."""
    found = (
        runs.list_runs(_workspace(org_name, workspace), 0, limit, set(statuses) or None)[0]
        if workspace
        else runs.list_org_runs(_org(org_name), limit, set(statuses) or None)
    )
    for run in found:
        click.echo(f"{run.id}\t{run.workspace.name}\t{run.status}\t{run.created_at:%Y-%m-%d %H:%M:%S}\t{run.message}")


@runs_cli.command("show")
@click.argument("run_id")
@click.option("--log", "phase", type=click.Choice(runs.PHASES), help="Print this phase's log too.")
@_domain_errors
def show_run(run_id: str, phase: str | None) -> None:
    """The run's status, phases and error; with --log, the phase's log."""
    run = _run(run_id)
    click.echo(f"run {run.id} in {run.workspace.organization.name}/{run.workspace.name}: {run.status}")
    click.echo(f"plan {run.plan_id}: {run.plan_status}; apply {run.apply_id}: {run.apply_status}")
    click.echo(
        f"changes: +{run.resource_additions} ~{run.resource_changes} -{run.resource_destructions}"
        f"; agent: {run.agent_name or '-'}; created by {run.created_by or '-'}"
    )
    if run.error_message:
        click.echo(f"error: {run.error_message}")
    if phase:
        offset = 0
        while chunk := runs.read_log(run, phase, offset, LOG_PAGE):
            offset += len(chunk)
            click.echo(chunk.strip(runs.STX + runs.ETX).decode(errors="replace"), nl=False)
        click.echo("")


@runs_cli.command("cancel")
@click.argument("run_id")
@click.option("--force", is_flag=True, help="End an executing run now (after a cancel was requested).")
@_domain_errors
def cancel_run(run_id: str, force: bool) -> None:
    """Cancel a run: at once while it waits, by interrupting Terraform while it executes."""
    run = _run(run_id)
    guard = OperatorGuard(run.workspace, _actor())
    done = runs.force_cancel_run(guard, run) if force else runs.cancel_run(guard, run)
    click.echo(f"run {done.id}: {done.status}" + (" (cancel requested)" if done.cancel_requested_at else ""))


def _run(run_id: str) -> Run:
    run = runs.get_run(run_id)
    if run is None:
        raise StatesmanError(f"run {run_id!r} not found (flask runs list --org ORG shows them)")
    return run
