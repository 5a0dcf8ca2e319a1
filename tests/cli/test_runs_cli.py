"""``flask runs list|show|cancel``: the operator's view of remote runs."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.extensions import db
from app.models import Run
from app.repositories import runs
from tests.repositories.test_runs import agent, queue, workspace


def test_list_show_and_cancel(make_app: Any) -> None:
    app: Flask = make_app(runs_enabled=True)
    with app.app_context():
        first, second = queue(workspace(), message="first"), queue(workspace(), message="second")
        job = runs.claim_job(agent(name="build-7"))
        assert job is not None
        runs.append_log(job, b"Initializing the backend...\n")
        first_id, second_id = first.id, second.id
    cli = app.test_cli_runner()
    listed = cli.invoke(args=["runs", "list", "--org", "acme"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].startswith(f"{second_id}\tnet\tpending") and lines[1].startswith(f"{first_id}\tnet\tplanning")
    only = cli.invoke(args=["runs", "list", "--org", "acme", "--workspace", "net", "--status", "pending"])
    assert only.output.splitlines() == [lines[0]]
    shown = cli.invoke(args=["runs", "show", first_id, "--log", "plan"])
    assert "planning" in shown.output and "agent: build-7" in shown.output
    assert "Initializing the backend..." in shown.output and "\x02" not in shown.output
    canceled = cli.invoke(args=["runs", "cancel", second_id])
    assert canceled.exit_code == 0 and f"run {second_id}: canceled" in canceled.output
    requested = cli.invoke(args=["runs", "cancel", first_id])
    assert "planning (cancel requested)" in requested.output
    forced = cli.invoke(args=["runs", "cancel", first_id, "--force"])
    assert f"run {first_id}: canceled" in forced.output
    again = cli.invoke(args=["runs", "cancel", first_id])
    assert again.exit_code == 1 and "cannot be canceled" in again.output
    missing = cli.invoke(args=["runs", "show", "run-nope"])
    assert missing.exit_code == 1 and "not found" in missing.output
    with app.app_context():
        assert db.session.get(Run, first_id).force_canceled_at is not None  # type: ignore[union-attr]
