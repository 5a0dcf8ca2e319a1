"""Which binary runs a job, the backend override, and the command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.agent.terraform import (
    PlanOptions,
    TerraformNotInstalled,
    apply_command,
    init_command,
    override_file,
    plan_command,
    select_binary,
    version_of,
)
from tests.e2e.terraform_cli import terraform_1_0_3


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_latest_runs_the_default_binary_on_the_path(tmp_path: Path) -> None:
    found = executable(tmp_path / "bin" / "terraform")
    for version in ("latest", ""):
        assert select_binary(version, agent="a1", search_path=str(tmp_path / "bin")) == found
    assert select_binary("latest", agent="a1", default=str(found)) == found


def test_a_pinned_version_runs_from_the_versions_directory(tmp_path: Path) -> None:
    executable(tmp_path / "bin" / "terraform")
    pinned = executable(tmp_path / "versions" / "1.5.7" / "terraform")
    chosen = select_binary("1.5.7", agent="a1", versions_dir=tmp_path / "versions", search_path=str(tmp_path / "bin"))
    assert chosen == pinned


def test_a_pinned_version_may_be_the_default_binary(tmp_path: Path) -> None:
    default = executable(tmp_path / "bin" / "terraform")
    chosen = select_binary(
        "1.0.3", agent="a1", search_path=str(tmp_path / "bin"), default_version=lambda _path: "1.0.3"
    )
    assert chosen == default


def test_a_missing_version_names_the_agent_and_where_it_looked(tmp_path: Path) -> None:
    executable(tmp_path / "bin" / "terraform")
    with pytest.raises(TerraformNotInstalled) as missing:
        select_binary(
            "1.9.0",
            agent="builder-7",
            versions_dir=tmp_path / "versions",
            search_path=str(tmp_path / "bin"),
            default_version=lambda _path: "1.0.3",
        )
    message = str(missing.value)
    assert message.startswith("Terraform 1.9.0 is not installed on agent builder-7 (looked for ")
    assert str(tmp_path / "versions" / "1.9.0" / "terraform") in message and "another version" in message
    with pytest.raises(TerraformNotInstalled, match="Terraform is not installed on agent a1"):
        select_binary("latest", agent="a1", search_path=str(tmp_path / "empty"))


def test_a_version_that_is_not_one_never_becomes_a_path(tmp_path: Path) -> None:
    executable(tmp_path / "sh" / "terraform")
    for version in ("../sh", "~> 1.5", "1.5", "1.5.7/../../sh"):
        with pytest.raises(TerraformNotInstalled, match="not an exact version"):
            select_binary(version, agent="a1", versions_dir=tmp_path / "versions")


def test_version_of_a_real_terraform_and_of_something_else(tmp_path: Path) -> None:
    info = version_of(terraform_1_0_3().path, {"PATH": "/usr/bin:/bin"})
    assert info is not None and info.version == "1.0.3" and info.platform.startswith("linux_")
    assert version_of(executable(tmp_path / "not-terraform"), {}) is None


def test_the_override_points_a_local_backend_at_the_job_s_state() -> None:
    text = override_file(Path('/jobs/j "1"/terraform.tfstate'))
    assert text == 'terraform {\n  backend "local" {\n    path = "/jobs/j \\"1\\"/terraform.tfstate"\n  }\n}\n'


def test_command_lines() -> None:
    binary, plan = Path("/tf"), Path("/job/plan.tfplan")
    assert init_command(binary) == ["/tf", "init", "-input=false", "-no-color", "-reconfigure"]
    assert plan_command(binary, plan, PlanOptions()) == [
        "/tf",
        "plan",
        "-input=false",
        "-no-color",
        "-out=/job/plan.tfplan",
        "-detailed-exitcode",
    ]
    options = PlanOptions(is_destroy=True, refresh=False, target_addrs=("a.b", "c.d"), replace_addrs=("e.f",))
    assert plan_command(binary, plan, options)[6:] == [
        "-destroy",
        "-refresh=false",
        "-target=a.b",
        "-target=c.d",
        "-replace=e.f",
    ]
    assert plan_command(binary, plan, PlanOptions(refresh_only=True))[6:] == ["-refresh-only"]
    assert apply_command(binary, plan) == ["/tf", "apply", "-input=false", "-no-color", "/job/plan.tfplan"]
