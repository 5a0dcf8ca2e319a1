"""The parts of a job that need no server: its document, where it runs inside the archive, what it forgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.agent.job import InvalidJob, Job, JobFailed, forget_local_settings, keep_state, working_directory

JOB = {
    "run_id": "run-1",
    "phase": "plan",
    "lease_id": "lease",
    "lease_seconds": 30,
    "heartbeat_seconds": 10,
    "timeout_seconds": 3600,
    "terraform_version": "1.0.3",
    "is_destroy": True,
    "refresh": False,
    "target_addrs": ["null_resource.a"],
    "working_directory": "infra/net",
    "variables": [{"key": "k", "value": "v", "category": "env", "hcl": False, "sensitive": True}],
}


def test_a_job_document_is_read_with_defaults_for_what_is_missing() -> None:
    job = Job.from_json(JOB)
    assert job.plan.is_destroy and not job.plan.refresh and job.plan.target_addrs == ("null_resource.a",)
    assert job.variables[0].category == "env" and job.variables[0].sensitive
    minimal = Job.from_json({"run_id": "run-2", "phase": "apply", "lease_id": "l"})
    assert minimal.plan.refresh and minimal.variables == () and minimal.timeout_seconds == 0


def test_a_job_this_agent_cannot_run_is_refused() -> None:
    for broken in ({**JOB, "phase": "destroy"}, {"phase": "plan"}, {**JOB, "variables": [{"key": "k"}]}):
        with pytest.raises(InvalidJob):
            Job.from_json(broken)
    with pytest.raises(InvalidJob, match="category"):
        Job.from_json({**JOB, "variables": [{"key": "k", "value": "v", "category": "file"}]})


def test_the_working_directory_must_be_inside_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "infra" / "net").mkdir(parents=True)
    (tmp_path / "escape").symlink_to("/etc")
    assert working_directory(tmp_path, "") == tmp_path.resolve()
    assert working_directory(tmp_path, "/infra/net/") == (tmp_path / "infra" / "net").resolve()
    for outside in ("../x", "infra/../../x", "escape", "missing"):
        with pytest.raises(JobFailed, match="working directory"):
            working_directory(tmp_path, outside)


def test_an_uploaded_dot_terraform_forgets_its_backend_and_workspace(tmp_path: Path) -> None:
    data = tmp_path / ".terraform"
    (data / "modules").mkdir(parents=True)
    for name in ("terraform.tfstate", "environment", "modules/modules.json"):
        (data / name).write_text("x")
    forget_local_settings(tmp_path)
    assert sorted(p.name for p in data.rglob("*")) == ["modules", "modules.json"]


def test_a_state_the_server_would_not_take_is_kept_privately(tmp_path: Path) -> None:
    state = tmp_path / "terraform.tfstate"
    state.write_text('{"serial": 2}')
    kept = keep_state(state, tmp_path / "work", "run-9")
    assert kept == tmp_path / "work" / "statesman-kept-states" / "run-9.tfstate"
    assert kept.read_text() == '{"serial": 2}' and kept.stat().st_mode & 0o077 == 0
    assert kept.parent.stat().st_mode & 0o077 == 0
