"""One job, a run's plan or apply, from claim to finish.

Plan: unpack the configuration, point it at the run's current state through a local backend, ``terraform init``,
``terraform plan`` into a saved plan, upload the JSON plan and the plan file. Apply: the same preparation with the
saved plan downloaded, ``terraform apply`` of exactly that plan, upload of the new state. The log starts with three
header lines in both phases, as Terraform Cloud's do: the remote backend and the cloud block skip the first three
lines of an apply log (they repeat the plan log's), so an apply log without them would lose real output.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar

import requests

from app.agent.client import AgentApiError, AgentClient, LeaseLost
from app.agent.control import ERRORED, FINISHED, JobControl
from app.agent.environment import job_environment
from app.agent.heartbeat import Heartbeat
from app.agent.logstream import LogStream
from app.agent.process import DEFAULT_GRACE_SECONDS, run_command
from app.agent.redaction import Redactor, redact_json
from app.agent.terraform import (
    DEFAULT_BINARY,
    OVERRIDE_FILE,
    PlanOptions,
    TerraformInfo,
    TerraformNotInstalled,
    apply_command,
    init_command,
    override_file,
    plan_command,
    select_binary,
    show_json_command,
    this_platform,
    version_of,
)
from app.agent.tfvars import TFVARS_FILE, InvalidVariable, Variable, render_tfvars
from app.core.archives import unpack_archive
from app.core.errors import InvalidInput, PayloadTooLarge

log = logging.getLogger("statesman.agent")

T = TypeVar("T")
PHASES = ("plan", "apply")
UPLOAD_ATTEMPTS = 4


@dataclass(frozen=True)
class AgentSettings:
    """How this agent runs jobs."""

    name: str
    work_dir: Path | None = None
    versions_dir: Path | None = None
    terraform_bin: str = DEFAULT_BINARY
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    # The agent's own environment: the source of the few settings passed through to Terraform.
    environment: Mapping[str, str] = field(default_factory=dict)


class InvalidJob(ValueError):
    """The server's job document is not one this agent understands."""


@dataclass(frozen=True)
class Job:
    """A claimed job, as the agent API's claim answers it."""

    run_id: str
    phase: str
    lease_id: str
    lease_seconds: float
    heartbeat_seconds: float
    timeout_seconds: float
    terraform_version: str
    plan: PlanOptions
    plan_only: bool
    working_directory: str
    variables: tuple[Variable, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        """The job in ``data``; ``InvalidJob`` names what is missing or malformed."""
        try:
            phase = str(data["phase"])
            if phase not in PHASES:
                raise InvalidJob(f"unknown job phase {phase!r}")
            return cls(
                run_id=str(data["run_id"]),
                phase=phase,
                lease_id=str(data["lease_id"]),
                lease_seconds=float(data.get("lease_seconds") or 30),
                heartbeat_seconds=float(data.get("heartbeat_seconds") or 10),
                timeout_seconds=float(data.get("timeout_seconds") or 0),
                terraform_version=str(data.get("terraform_version") or ""),
                plan=PlanOptions(
                    is_destroy=bool(data.get("is_destroy", False)),
                    refresh=bool(data.get("refresh", True)),
                    refresh_only=bool(data.get("refresh_only", False)),
                    target_addrs=tuple(str(address) for address in data.get("target_addrs") or ()),
                    replace_addrs=tuple(str(address) for address in data.get("replace_addrs") or ()),
                ),
                plan_only=bool(data.get("plan_only", False)),
                working_directory=str(data.get("working_directory") or ""),
                variables=tuple(_variable(found) for found in data.get("variables") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidJob):
                raise
            raise InvalidJob(f"malformed job: {exc!r}") from None


def _variable(data: Mapping[str, Any]) -> Variable:
    category = str(data.get("category") or "terraform")
    if category not in ("terraform", "env"):
        raise InvalidJob(f"variable {str(data.get('key'))[:128]!r} has unknown category {category!r}")
    return Variable(
        key=str(data["key"]),
        value=str(data["value"]),
        category=category,
        hcl=bool(data.get("hcl", False)),
        sensitive=bool(data.get("sensitive", False)),
    )


class JobFailed(Exception):
    """The job ends errored; the message goes into the run's log and its error."""


class Stopped(Exception):
    """The job was stopped (canceled, timed out, lease lost, agent stopping): ``JobControl.stop`` says why."""


def run_job(client: AgentClient, job: Job, settings: AgentSettings, control: JobControl) -> str | None:
    """Execute ``job`` and report its end; returns the outcome reported (None when the lease was lost)."""
    log.info("job started: run %s %s", job.run_id, job.phase)
    redactor = _redactor(job)
    stream = LogStream(lambda data: client.send_log(job.lease_id, data), redactor, control).start()
    heartbeat = Heartbeat(
        lambda: client.heartbeat(job.lease_id), control, job.heartbeat_seconds, job.lease_seconds
    ).start()
    directory = Path(tempfile.mkdtemp(prefix="statesman-job-", dir=settings.work_dir))  # mode 0700
    try:
        outcome, error = _outcome(lambda: _execute(client, job, settings, control, stream, directory), control)
        if error is not None:
            stream.line(f"\nError: {error}")
    finally:
        stream.close()
        heartbeat.stop()
        shutil.rmtree(directory, ignore_errors=True)
    reported = _finish(client, job, control, outcome, error)
    log.info("job ended: run %s %s: %s", job.run_id, job.phase, reported or "lease lost, nothing reported")
    return reported


def _outcome(execute: Callable[[], None], control: JobControl) -> tuple[str | None, str | None]:
    """What to report after ``execute``: finished, or why not."""
    try:
        execute()
        return FINISHED, None
    except Stopped:
        stop = control.stop
        assert stop is not None
        return stop.outcome, stop.reason if stop.outcome == ERRORED else None
    except LeaseLost as lost:
        control.lose_lease(str(lost))
        return None, None
    except JobFailed as failed:
        return ERRORED, str(failed)
    except (requests.RequestException, AgentApiError) as exc:
        return ERRORED, f"the agent could not complete a request to the server: {exc}"
    except Exception:
        log.exception("job of run failed unexpectedly")
        return ERRORED, "the agent failed unexpectedly (see the agent's log)"


def _finish(client: AgentClient, job: Job, control: JobControl, outcome: str | None, error: str | None) -> str | None:
    if outcome is None or control.lease_lost:
        return None
    try:
        _retrying(lambda: client.finish(job.lease_id, outcome, error))
    except (requests.RequestException, AgentApiError) as exc:
        log.warning("could not report the end of run %s %s: %s", job.run_id, job.phase, exc)
        return None
    return outcome


def _retrying(call: Callable[[], T], attempts: int = UPLOAD_ATTEMPTS) -> T:
    """``call()``, again after network errors and 5xx answers (each request here may be repeated safely)."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except (requests.RequestException, AgentApiError) as exc:
            retryable = not isinstance(exc, AgentApiError) or exc.status >= 500
            if not retryable or attempt == attempts:
                raise
            time.sleep(min(2**attempt, 10))
    raise AssertionError("unreachable")


@dataclass
class _Context:
    """What the steps of a job share."""

    client: AgentClient
    job: Job
    settings: AgentSettings
    control: JobControl
    stream: LogStream
    directory: Path
    environment: dict[str, str]
    binary: Path | None = None

    @property
    def state(self) -> Path:
        return self.directory / "terraform.tfstate"

    @property
    def plan_file(self) -> Path:
        return self.directory / "plan.tfplan"

    def run(self, command: list[str], cwd: Path, output: Callable[[bytes], None] | None = None, **kw: Any) -> int:
        """Run a Terraform command; ``Stopped`` when the job was stopped before or during it."""
        checkpoint(self.control)
        ended = run_command(
            command,
            cwd=cwd,
            environment=self.environment,
            output=output or self.stream.write,
            control=self.control,
            grace_seconds=self.settings.grace_seconds,
            **kw,
        )
        if ended.interrupted:
            raise Stopped()
        return ended.code


def checkpoint(control: JobControl) -> None:
    """``Stopped`` when the job has been asked to stop."""
    control.check_deadline()
    if control.stop is not None:
        raise Stopped()


def _execute(
    client: AgentClient, job: Job, settings: AgentSettings, control: JobControl, stream: LogStream, directory: Path
) -> None:
    home = directory / "home"
    home.mkdir(mode=0o700)
    environment = job_environment(
        settings.environment, home, [(v.key, v.value) for v in job.variables if v.category == "env"]
    )
    context = _Context(client, job, settings, control, stream, directory, environment)
    context.binary = _select_terraform(context)
    working = _prepare(context)
    if job.phase == "plan":
        _plan(context, working)
    else:
        _apply(context, working)


def _select_terraform(context: _Context) -> Path:
    """The job's binary, after the log's three header lines (written even when there is no binary)."""
    job, settings = context.job, context.settings
    try:
        binary = select_binary(
            job.terraform_version,
            agent=settings.name,
            default=settings.terraform_bin,
            versions_dir=settings.versions_dir,
            search_path=context.environment.get("PATH"),
            default_version=lambda path: getattr(version_of(path, context.environment), "version", None),
        )
    except TerraformNotInstalled as missing:
        _header(context.stream, TerraformInfo(job.terraform_version or "latest", this_platform()))
        raise JobFailed(str(missing)) from None
    _header(context.stream, version_of(binary, context.environment) or TerraformInfo("?", this_platform()))
    return binary


def _header(stream: LogStream, info: TerraformInfo) -> None:
    stream.line(f"Terraform v{info.version.removeprefix('v')}")
    stream.line(f"On {info.platform}")
    stream.line("Initializing plugins and modules...")


def _prepare(context: _Context) -> Path:
    """Unpack the configuration with the agent's override and variables; returns the directory to run in."""
    archive = context.directory / "configuration.tar.gz"
    configuration = context.directory / "configuration"
    configuration.mkdir(mode=0o700)
    context.client.download(context.job.lease_id, "configuration", archive)
    try:
        with archive.open("rb") as stream:
            unpack_archive(stream, configuration)
    except (InvalidInput, PayloadTooLarge) as refused:
        raise JobFailed(f"the configuration cannot be unpacked: {refused.message}") from None
    archive.unlink()
    working = working_directory(configuration, context.job.working_directory)
    forget_local_settings(working)
    if context.client.download(context.job.lease_id, "state", context.state):
        context.state.chmod(0o600)
    # Relative: the saved plan records the backend, and its apply runs in another job directory of the same layout.
    (working / OVERRIDE_FILE).write_text(override_file(Path(os.path.relpath(context.state, working))))
    try:
        tfvars = render_tfvars(context.job.variables)
    except InvalidVariable as invalid:
        raise JobFailed(str(invalid)) from None
    _private_file(working / TFVARS_FILE, tfvars)
    return working


def working_directory(configuration: Path, relative: str) -> Path:
    """The workspace's working directory inside the unpacked configuration; ``JobFailed`` when it is not one."""
    path = PurePosixPath(relative.strip("/")) if relative.strip("/") else PurePosixPath(".")
    if path.is_absolute() or ".." in path.parts:
        raise JobFailed(f"the working directory {relative[:255]!r} is not a path inside the configuration")
    working = (configuration / path).resolve()
    if not working.is_relative_to(configuration.resolve()) or not working.is_dir():
        raise JobFailed(f"the working directory {relative[:255]!r} does not exist in the configuration")
    return working


def forget_local_settings(working: Path) -> None:
    """Drop what an uploaded ``.terraform`` may remember: the old backend and a selected workspace (either would
    make Terraform use another state than the run's)."""
    for name in ("terraform.tfstate", "environment"):
        (working / ".terraform" / name).unlink(missing_ok=True)


def _redactor(job: Job) -> Redactor:
    """Masks the values of the job's sensitive variables."""
    return Redactor(variable.value for variable in job.variables if variable.sensitive)


def _private_file(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(text)


def _plan(context: _Context, working: Path) -> None:
    """init, plan to the saved plan file, its JSON; uploads both."""
    assert context.binary is not None
    binary, lease = context.binary, context.job.lease_id
    if (code := context.run(init_command(binary), working)) != 0:
        raise JobFailed(f"terraform init failed (exit status {code})")
    code = context.run(plan_command(binary, context.plan_file, context.job.plan), working)
    if code not in (0, 2):  # -detailed-exitcode: 0 no changes, 2 changes, 1 an error
        raise JobFailed(f"terraform plan failed (exit status {code})")
    plan_json = context.directory / "plan.json"
    with plan_json.open("wb") as out:
        if (code := context.run(show_json_command(binary, context.plan_file), working, stdout=out)) != 0:
            raise JobFailed(f"terraform show -json failed (exit status {code})")
    checkpoint(context.control)
    plan_json.write_bytes(redact_json(plan_json.read_bytes(), _redactor(context.job)))
    _retrying(lambda: context.client.upload(lease, "plan-json", plan_json))
    if not context.job.plan_only:  # a speculative plan is never applied: its plan file is not kept
        _retrying(lambda: context.client.upload(lease, "plan-file", context.plan_file))


def _apply(context: _Context, working: Path) -> None:
    """init (its output only shown when it fails: the plan log has it), apply the saved plan, upload the state."""
    assert context.binary is not None
    binary, lease = context.binary, context.job.lease_id
    if not context.client.download(lease, "plan-file", context.plan_file):
        raise JobFailed("the run has no saved plan to apply")
    init_output = bytearray()
    if (code := context.run(init_command(binary), working, output=init_output.extend)) != 0:
        context.stream.write(bytes(init_output))
        raise JobFailed(f"terraform init failed (exit status {code})")
    before = _digest(context.state)
    try:
        code = context.run(apply_command(binary, context.plan_file), working)
    finally:
        # Also after a failed or interrupted apply: whatever Terraform changed is in the state it wrote.
        if _digest(context.state) != before:
            _upload_state(context)
    if code != 0:
        raise JobFailed(f"terraform apply failed (exit status {code})")


def _upload_state(context: _Context) -> None:
    """Upload the new state; when the server does not take it, keep a private copy and say where."""
    try:
        _retrying(lambda: context.client.upload(context.job.lease_id, "state", context.state))
    except (requests.RequestException, AgentApiError) as exc:
        kept = keep_state(context.state, context.settings.work_dir, context.job.run_id)
        log.error("the state of run %s could not be stored (%s); a copy is at %s", context.job.run_id, exc, kept)
        context.stream.line(
            f"\nError: the new state could not be stored ({exc}); agent {context.settings.name} kept a copy at {kept}"
        )
        if isinstance(exc, LeaseLost):
            raise
        raise JobFailed(f"the new state could not be stored: {exc}") from None


def keep_state(state: Path, work_dir: Path | None, run_id: str) -> Path:
    """Copy ``state`` to ``<work dir>/statesman-kept-states/<run id>.tfstate`` (private), so it is not lost."""
    directory = (work_dir or Path(tempfile.gettempdir())) / "statesman-kept-states"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    kept = directory / f"{run_id}.tfstate"
    with state.open("rb") as source:
        _copy_private(source, kept)
    return kept


def _copy_private(source: IO[bytes], destination: Path) -> None:
    destination.unlink(missing_ok=True)
    destination.touch(mode=0o600)
    with destination.open("wb") as out:
        shutil.copyfileobj(source, out)


def _digest(path: Path) -> str | None:
    if not path.exists():
        return None
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()
