"""Remote runs: the queue, the state machine, agents' claims and leases, logs, saved plans. Every run rule is here.

``pending`` → ``plan_queued`` → ``planning`` → ``planned`` | ``planned_and_finished`` | ``errored`` →
``apply_queued`` → ``applying`` → ``applied`` | ``errored``; ``discarded`` (a planned run not applied) and
``canceled`` end a run too. One run per workspace is *active* at a time; later ones wait ``pending`` and the oldest
is promoted when the active one ends. A run that may apply takes the workspace lock (lock ID = run id) when it is
promoted and keeps it until it ends, so a user's own lock keeps it waiting, as in HCP Terraform; a plan-only run
never takes the lock.

Agents claim a queued phase atomically (a conditional UPDATE, after ``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL) and hold it by a lease they renew; a phase whose lease runs out is errored with the reason and its
lock released. Expired leases are swept on every claim and on every read of a run, so a lost agent is noticed as
soon as anyone looks. Every run action needs ``unit.write``: a run executes code with the workspace's variables.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.core import policy
from app.core.clock import utcnow
from app.core.errors import Conflict, InvalidInput, LockConflict, NotFound
from app.core.ids import new_id
from app.core.statefile import READ_CHUNK, StateBody, spool_body
from app.drivers.kms.base import seal, unseal
from app.extensions import config, db, drivers
from app.models import ConfigurationVersion, Organization, Run, RunLog, StateVersion, Workspace
from app.repositories import state_versions, variables
from app.repositories.audit import record_event
from app.repositories.configuration_versions import get_configuration_version, open_archive
from app.repositories.guard import WorkspaceGuard
from app.repositories.locks import joined_connection

ACTIVE = frozenset({"plan_queued", "planning", "planned", "confirmed", "apply_queued", "applying"})
FINAL = frozenset({"applied", "planned_and_finished", "errored", "discarded", "canceled"})
QUEUED = ("plan_queued", "apply_queued")
EXECUTING = ("planning", "applying")
PHASES = ("plan", "apply")
PHASE_DONE = frozenset({"finished", "errored", "canceled", "unreachable"})
STX, ETX = b"\x02", b"\x03"
MAX_LOG_PIECE = 32 * 1024  # one sealed piece stays inside every database's plain BLOB
MAX_ADDRS = 1000
MAX_ADDR_LENGTH = 1024
MAX_VARIABLES = 500
MAX_ERROR = 1024
MAX_MESSAGE = 512


@dataclass(frozen=True)
class RunOptions:
    """What a run is asked to do (TFE ``runs`` create attributes)."""

    message: str = ""
    is_destroy: bool = False
    refresh: bool = True
    refresh_only: bool = False
    plan_only: bool = False
    auto_apply: bool | None = None  # None: the workspace's auto-apply
    target_addrs: tuple[str, ...] = ()
    replace_addrs: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()  # run variables: key, HCL value


@dataclass(frozen=True)
class Job:
    """A phase of a run claimed by one agent, named by its lease."""

    run: Run
    phase: str
    lease_id: str


@dataclass(frozen=True)
class AgentIdentity:
    """The agent token a claim is made with: its organization, its pool (None: an organization-wide agent)."""

    org_id: str
    token_id: str
    pool_id: str | None
    name: str


# ---- creating and reading runs -----------------------------------------------------------------------------


def create_run(guard: WorkspaceGuard, version: ConfigurationVersion, options: RunOptions) -> Run:
    """Queue a run of ``version`` in the guard's workspace; it starts when the workspace's earlier runs end."""
    guard.require(policy.WRITE)
    workspace = guard.workspace
    _check_runnable(workspace, version)
    _check_options(options)
    run_id = new_id("run")
    run = Run(
        id=run_id,
        workspace_id=workspace.id,
        org_id=workspace.org_id,
        configuration_version_id=version.id,
        status="pending",
        message=options.message[:MAX_MESSAGE],
        is_destroy=options.is_destroy,
        refresh=options.refresh,
        refresh_only=options.refresh_only,
        plan_only=options.plan_only or version.speculative,
        auto_apply=workspace.auto_apply if options.auto_apply is None else options.auto_apply,
        target_addrs=list(options.target_addrs),
        replace_addrs=list(options.replace_addrs),
        variable_keys=[key for key, _ in options.variables],
        terraform_version=workspace.terraform_version or "latest",
        created_by=guard.actor,
        created_at=utcnow(),
        status_timestamps={},
        plan_id=new_id("plan"),
        apply_id=new_id("apply"),
        plan_status="pending",
        apply_status="pending",
    )
    if options.variables:
        kms = drivers().kms
        body = json.dumps([{"key": k, "value": v} for k, v in options.variables]).encode()
        run.sealed_variables, run.variables_kms_key_id = seal(kms, body, _variables_context(run_id)), kms.key_id
    db.session.add(run)
    record_event("run.create", "ok", guard.actor, workspace=workspace, commit=False, run_id=run_id)
    db.session.commit()
    advance_queue(workspace)
    db.session.refresh(run)
    return run


def _check_runnable(workspace: Workspace, version: ConfigurationVersion) -> None:
    if not config().runs_enabled:
        raise Conflict("remote runs are disabled on this server (RUNS_ENABLED=false); run Terraform locally")
    if workspace.execution_mode not in ("remote", "agent"):
        raise Conflict(
            f"workspace {workspace.name!r} runs locally (execution mode {workspace.execution_mode!r}); "
            'set its execution mode to "remote" or "agent" to queue runs'
        )
    if version.workspace_id != workspace.id:
        raise NotFound(f"configuration version {version.id!r} not found in workspace {workspace.name!r}")
    if version.status != "uploaded":
        raise Conflict(f"configuration version {version.id!r} is {version.status}: upload its archive first")


def _check_options(options: RunOptions) -> None:
    for name, addrs in (("target-addrs", options.target_addrs), ("replace-addrs", options.replace_addrs)):
        if len(addrs) > MAX_ADDRS or any(not a or len(a) > MAX_ADDR_LENGTH or not a.isprintable() for a in addrs):
            raise InvalidInput(f"{name}: at most {MAX_ADDRS} resource addresses of 1-{MAX_ADDR_LENGTH} characters")
    if options.refresh_only and (options.is_destroy or not options.refresh):
        raise InvalidInput("refresh-only cannot be combined with is-destroy or refresh=false")
    if len(options.variables) > MAX_VARIABLES:
        raise InvalidInput(f"a run takes at most {MAX_VARIABLES} variables")
    keys = [key for key, _ in options.variables]
    if len(set(keys)) != len(keys):
        raise InvalidInput("run variables: each key at most once")
    for key, value in options.variables:
        variables.check_run_variable(key, value)


def get_run(run_id: str) -> Run | None:
    """The run by id in any organization, or None (callers check visibility); an expired lease is settled first."""
    run = db.session.get(Run, run_id)
    if run is not None and _lease_expired(run):
        expire_leases()
        db.session.refresh(run)
    return run


def get_run_by_plan(plan_id: str) -> Run | None:
    """The run whose plan has this id."""
    found = db.session.scalar(db.select(Run.id).where(Run.plan_id == plan_id))
    return get_run(found) if found else None


def get_run_by_apply(apply_id: str) -> Run | None:
    """The run whose apply has this id."""
    found = db.session.scalar(db.select(Run.id).where(Run.apply_id == apply_id))
    return get_run(found) if found else None


def list_runs(
    workspace: Workspace, offset: int = 0, limit: int = 20, statuses: set[str] | None = None
) -> tuple[list[Run], int]:
    """A page of the workspace's runs, newest first (the order Terraform counts its queue position in)."""
    where = [Run.workspace_id == workspace.id]
    if statuses:
        where.append(Run.status.in_(sorted(statuses)))
    total = db.session.scalar(db.select(db.func.count()).select_from(Run).where(*where)) or 0
    page = db.session.scalars(
        db.select(Run).where(*where).order_by(Run.created_at.desc(), Run.id.desc()).offset(offset).limit(limit)
    )
    return list(page), total


def list_org_runs(org: Organization, limit: int = 20, statuses: set[str] | None = None) -> list[Run]:
    """The organization's newest runs (every workspace), for the operator."""
    where = [Run.org_id == org.id]
    if statuses:
        where.append(Run.status.in_(sorted(statuses)))
    query = db.select(Run).where(*where).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def current_run(workspace: Workspace) -> Run | None:
    """The run the workspace is busy with, else the next to start, else the newest (TFE ``current-run``)."""
    return current_runs([workspace]).get(workspace.id)


def current_runs(workspaces: list[Workspace]) -> dict[str, Run]:
    """Each workspace's current run (by workspace id; none for workspaces without runs): the active run, else the
    oldest pending, else the newest; three queries at most for a whole page."""
    found: dict[str, Run] = {}
    for where, newest in (
        (Run.status.in_(sorted(ACTIVE)), False),
        (Run.status == "pending", False),
        (db.true(), True),
    ):
        missing = [w.id for w in workspaces if w.id not in found]
        if not missing:
            break
        order = (Run.created_at.desc(), Run.id.desc()) if newest else (Run.created_at, Run.id)
        for run in db.session.scalars(db.select(Run).where(Run.workspace_id.in_(missing), where).order_by(*order)):
            found.setdefault(run.workspace_id, run)
    return found


def org_queue(org: Organization) -> list[Run]:
    """The organization's runs executing or waiting for an agent: executing first, then queued, oldest first."""
    executing = _org_runs(org, EXECUTING)
    return executing + _org_runs(org, QUEUED)


def capacity(org: Organization) -> tuple[int, int]:
    """(runs queued for an agent, runs executing) in the organization."""
    return len(_org_runs(org, QUEUED)), len(_org_runs(org, EXECUTING))


def _org_runs(org: Organization, statuses: Iterable[str]) -> list[Run]:
    query = db.select(Run).where(Run.org_id == org.id, Run.status.in_(list(statuses)))
    return list(db.session.scalars(query.order_by(Run.created_at, Run.id)))


def run_actions(run: Run) -> dict[str, bool]:
    """What can be done to the run now (TFE ``actions``)."""
    return {
        "is-cancelable": run.status in ("pending", *QUEUED, *EXECUTING) and run.cancel_requested_at is None,
        "is-confirmable": run.status == "planned",
        "is-discardable": run.status == "planned",
        "is-force-cancelable": run.status in EXECUTING and run.cancel_requested_at is not None,
    }


def run_variables(run: Run) -> list[tuple[str, str]]:
    """The run's own variables (key, HCL value)."""
    if run.sealed_variables is None:
        return []
    plain = unseal(drivers().kms, run.sealed_variables, _variables_context(run.id))
    return [(item["key"], item["value"]) for item in json.loads(plain)]


def job_variables(run: Run) -> list[dict[str, Any]]:
    """Everything the agent gives Terraform: the workspace's variables, with the run's variables winning."""
    overridden = set(run.variable_keys or [])
    found = [
        {
            "key": v.key,
            "value": variables.revealed_value(v),
            "category": v.category,
            "hcl": v.hcl,
            "sensitive": v.sensitive,
        }
        for v in variables.list_variables(run.workspace)
        if not (v.category == "terraform" and v.key in overridden)
    ]
    found += [
        {"key": k, "value": value, "category": "terraform", "hcl": True, "sensitive": False}
        for k, value in run_variables(run)
    ]
    return found


# ---- the queue ----------------------------------------------------------------------------------------------


def advance_queue(workspace: Workspace) -> Run | None:
    """Promote the workspace's oldest pending run when none is active; returns it, or None if it must wait.

    A run that may apply takes the workspace lock first, in the promotion's transaction when the lock table is in
    the metadata database (``joined_connection``). Only one run can hold that lock, and the promotion itself is
    one conditional UPDATE made while the workspace row is held, so two promoters never start two runs in one
    workspace.
    """
    waiting = _oldest(Run.workspace_id == workspace.id, Run.status == "pending")
    db.session.commit()
    if waiting is None or _active_run(workspace.id) is not None:
        db.session.commit()
        return None
    if not waiting.plan_only and not _take_lock(waiting):
        db.session.commit()
        return None  # a user's lock: the run waits, as in HCP Terraform
    _serialize_on(workspace.id)
    promoted = _active_run(workspace.id) is None and _transition(
        waiting, ("pending",), "plan_queued", {"plan_status": "queued"}
    )
    if not promoted and not waiting.plan_only and waiting.status not in ACTIVE:
        _release_lock(waiting)
        db.session.commit()
    return waiting if promoted else None


def advance_org_queues(org_id: str) -> None:
    """Promote where a workspace of the organization has a pending run and none active (a lock went away)."""
    blocked = db.select(Run.workspace_id).where(Run.org_id == org_id, Run.status == "pending").distinct()
    for workspace_id in list(db.session.scalars(blocked)):
        workspace = db.session.get(Workspace, workspace_id)
        if workspace is not None:
            advance_queue(workspace)


def _serialize_on(workspace_id: str) -> None:
    """Hold the workspace row until commit, so two promoters never both find the workspace idle.

    A no-op UPDATE takes a row lock on PostgreSQL and MySQL and the write lock on SQLite (which ignores
    ``SELECT … FOR UPDATE``), so the reads that follow see every promotion committed before.
    """
    db.session.execute(
        db.update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(version_counter=Workspace.version_counter)
        .execution_options(synchronize_session=False)
    )


def _active_run(workspace_id: str) -> Run | None:
    return _oldest(Run.workspace_id == workspace_id, Run.status.in_(sorted(ACTIVE)))


def _oldest(*where: Any) -> Run | None:
    return db.session.scalar(db.select(Run).where(*where).order_by(Run.created_at, Run.id).limit(1))


def _take_lock(run: Run) -> bool:
    try:
        drivers().locks.acquire(run.workspace_id, run.id, _lock_info(run), joined_connection())
    except LockConflict:
        return False
    record_event("lock", "ok", f"run:{run.id}", workspace=run.workspace, commit=False, lock_id=run.id)
    return True


def _release_lock(run: Run) -> None:
    """Release the run's lock; the caller commits (in its transaction when the lock table shares the database:
    ``advance_queue`` releases while it holds the workspace row, which on SQLite is the whole database)."""
    try:
        released = drivers().locks.release(run.workspace_id, run.id, joined_connection())
    except LockConflict:
        return  # someone force-unlocked and locked again: the lock is no longer the run's
    if released:
        record_event("unlock", "ok", f"run:{run.id}", workspace=run.workspace, commit=False, lock_id=run.id)


def _lock_info(run: Run) -> str:
    operation = "OperationTypePlan" if run.plan_only else "OperationTypeApply"
    return json.dumps(
        {
            "ID": run.id,
            "Operation": operation,
            "Info": f"remote run {run.id}",
            "Who": f"run {run.id}",
            "Version": "",
            "Created": utcnow().isoformat() + "Z",
            "Path": "",
        }
    )


# ---- actions of users ---------------------------------------------------------------------------------------


def apply_run(guard: WorkspaceGuard, run: Run, comment: str = "") -> Run:
    """Confirm a planned run: its saved plan is queued for an agent to apply."""
    _require(guard, run)
    confirmed = _transition(run, ("planned",), "apply_queued", {"apply_status": "queued"})
    if not confirmed:
        raise Conflict(f"run {run.id} is {run.status}: only a planned run waiting for confirmation can be applied")
    record_event("run.apply", "ok", guard.actor, workspace=run.workspace, run_id=run.id, comment=comment[:256])
    return run


def discard_run(guard: WorkspaceGuard, run: Run, comment: str = "") -> Run:
    """Drop a planned run without applying it; the workspace moves on to its next run."""
    _require(guard, run)
    if not _transition(run, ("planned",), "discarded", {"apply_status": "unreachable"}):
        raise Conflict(f"run {run.id} is {run.status}: only a planned run waiting for confirmation can be discarded")
    record_event("run.discard", "ok", guard.actor, workspace=run.workspace, run_id=run.id, comment=comment[:256])
    _ended(run)
    return run


def cancel_run(guard: WorkspaceGuard, run: Run, comment: str = "") -> Run:
    """Cancel a run: at once while it waits; by interrupting Terraform (the agent sees it) while it executes."""
    _require(guard, run)
    if run.status in ("pending", *QUEUED) and _transition(
        run, (run.status,), "canceled", _unreached(run), unclaimed=True
    ):
        record_event("run.cancel", "ok", guard.actor, workspace=run.workspace, run_id=run.id, comment=comment[:256])
        _ended(run)
        return run
    requested = db.session.execute(
        db.update(Run)
        .where(Run.id == run.id, Run.status.in_(EXECUTING), Run.cancel_requested_at.is_(None))
        .values(cancel_requested_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    db.session.commit()
    db.session.refresh(run)
    if requested != 1:
        raise Conflict(f"run {run.id} is {run.status} and cannot be canceled" + _already(run))
    record_event("run.cancel", "requested", guard.actor, workspace=run.workspace, run_id=run.id)
    return run


def force_cancel_run(guard: WorkspaceGuard, run: Run, comment: str = "") -> Run:
    """End an executing run now, after a cancel was requested: its lease ends, so its agent kills Terraform."""
    _require(guard, run)
    forced = run.status in EXECUTING and _transition(
        run,
        (run.status,),
        "canceled",
        {"force_canceled_at": utcnow(), "lease_id": None, **_failed_phase(run, "canceled")},
        cancel_requested=True,
    )
    if not forced:
        raise Conflict(f"run {run.id} is {run.status}: force-cancel is for an executing run whose cancel was requested")
    record_event("run.force_cancel", "ok", guard.actor, workspace=run.workspace, run_id=run.id, comment=comment[:256])
    _ended(run)
    return run


def _require(guard: WorkspaceGuard, run: Run) -> None:
    if run.workspace_id != guard.workspace.id:
        raise NotFound(f"run {run.id!r} not found")
    guard.require(policy.WRITE)


def _already(run: Run) -> str:
    return "; a cancel is already requested" if run.cancel_requested_at is not None else ""


def _unreached(run: Run) -> dict[str, Any]:
    """The phase statuses of a run canceled while it waited: the waiting phase canceled, a later one unreachable."""
    if run.status == "apply_queued":
        return {"apply_status": "canceled"}
    return {"plan_status": "canceled", "apply_status": "unreachable"}


def _transition(
    run: Run,
    sources: Iterable[str],
    target: str,
    values: dict[str, Any] | None = None,
    *,
    unclaimed: bool = False,
    cancel_requested: bool = False,
) -> bool:
    """Move the run from one of ``sources`` to ``target`` in one conditional UPDATE; False if it had moved on."""
    where = [Run.id == run.id, Run.status.in_(list(sources))]
    if unclaimed:
        where.append(Run.lease_id.is_(None))
    if cancel_requested:
        where.append(Run.cancel_requested_at.is_not(None))
    stamps = {**(run.status_timestamps or {}), _stamp_key(target): _iso(utcnow())}
    moved = db.session.execute(
        db.update(Run)
        .where(*where)
        .values(status=target, status_timestamps=stamps, **(values or {}))
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    db.session.commit()
    db.session.refresh(run)
    return bool(moved == 1)


def _ended(run: Run) -> None:
    """A run reached a final state: its lock goes, and the workspace's next run may start."""
    _release_lock(run)
    db.session.commit()
    advance_queue(run.workspace)


# ---- agents: claims and leases ------------------------------------------------------------------------------


def claim_job(agent: AgentIdentity) -> Job | None:
    """The oldest queued phase this agent may run, now leased to it; None when there is nothing to do."""
    expire_leases(agent.org_id)
    advance_org_queues(agent.org_id)
    for _ in range(8):  # another agent may win a candidate: try the next one
        candidate_id = _next_candidate(agent)
        candidate = db.session.get(Run, candidate_id) if candidate_id else None
        if candidate is None:
            db.session.commit()
            return None
        job = _lease(candidate, agent)
        if job is not None:
            return job
    return None


def _next_candidate(agent: AgentIdentity) -> str | None:
    """The oldest claimable run's id. On PostgreSQL, rows other claimers hold are skipped first (no waiting on
    each other); MySQL/MariaDB lock every row a sorted scan touches, so SKIP LOCKED there would hide free runs.
    Either way the conditional UPDATE in ``_lease`` decides who wins."""
    query = _claimable(agent)
    if db.engine.dialect.name == "postgresql":
        skipping: str | None = db.session.scalar(query.with_for_update(skip_locked=True, of=Run))
        if skipping is not None:
            return skipping
    found: str | None = db.session.scalar(query)
    return found


def _claimable(agent: AgentIdentity) -> Any:
    serves = (
        db.and_(Workspace.execution_mode == "agent", Workspace.agent_pool_id == agent.pool_id)
        if agent.pool_id
        else Workspace.execution_mode == "remote"
    )
    return (
        db.select(Run.id)
        .join(Workspace, Workspace.id == Run.workspace_id)
        .where(Run.org_id == agent.org_id, Run.status.in_(QUEUED), Run.lease_id.is_(None), serves)
        .order_by(Run.created_at, Run.id)
        .limit(1)
    )


def _lease(run: Run, agent: AgentIdentity) -> Job | None:
    phase = "plan" if run.status == "plan_queued" else "apply"
    target = "planning" if phase == "plan" else "applying"
    lease_id = secrets.token_urlsafe(24)
    taken = _transition(
        run,
        (run.status,),
        target,
        {
            "lease_id": lease_id,
            "lease_expires_at": _lease_end(),
            "agent_token_id": agent.token_id,
            "agent_name": agent.name[:255],
            f"{phase}_status": "running",
        },
        unclaimed=True,
    )
    return Job(run, phase, lease_id) if taken else None


def job_for_lease(lease_id: str, agent: AgentIdentity) -> Job:
    """The job an agent names by its lease: ``NotFound`` for a lease that is not this agent's, ``Conflict`` when
    the lease is over (expired, force-canceled, finished) so the agent must stop."""
    run = db.session.scalar(db.select(Run).where(Run.lease_id == lease_id))
    if run is None:
        raise Conflict("this job's lease is over (it expired, was force-canceled or finished): stop working on it")
    if run.org_id != agent.org_id or run.agent_token_id != agent.token_id:
        raise NotFound("no such job")
    if _lease_expired(run):
        expire_leases(agent.org_id)
        raise Conflict("this job's lease expired before it was renewed: stop working on it")
    return Job(run, "plan" if run.status == "planning" else "apply", lease_id)


def heartbeat(job: Job) -> dict[str, Any]:
    """Renew the lease; tells the agent whether a cancel was requested."""
    renewed = db.session.execute(
        db.update(Run)
        .where(Run.id == job.run.id, Run.lease_id == job.lease_id)
        .values(lease_expires_at=_lease_end())
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    db.session.commit()
    if renewed != 1:
        raise Conflict("this job's lease is over: stop working on it")
    db.session.refresh(job.run)
    return {"cancel": job.run.cancel_requested_at is not None, "lease_seconds": config().run_lease_seconds}


def expire_leases(org_id: str | None = None) -> int:
    """Error every executing phase whose agent stopped renewing its lease; returns how many."""
    now = utcnow()
    query = db.select(Run).where(Run.status.in_(EXECUTING), Run.lease_id.is_not(None), Run.lease_expires_at < now)
    if org_id is not None:
        query = query.where(Run.org_id == org_id)
    expired = 0
    for run in list(db.session.scalars(query)):
        reason = (
            f"agent {run.agent_name!r} stopped renewing its lease; the {_phase(run)} was abandoned "
            f"(lease ended {_iso(run.lease_expires_at)})"
        )
        if _transition(
            run, (run.status,), "errored", {"lease_id": None, "error_message": reason, **_failed_phase(run)}
        ):
            record_event("run.lease_expired", "errored", "statesman", workspace=run.workspace, run_id=run.id)
            _ended(run)
            expired += 1
    return expired


def _lease_expired(run: Run) -> bool:
    return (
        run.status in EXECUTING
        and run.lease_id is not None
        and run.lease_expires_at is not None
        and run.lease_expires_at < utcnow()
    )


def _lease_end() -> datetime:
    return utcnow() + timedelta(seconds=config().run_lease_seconds)


def _phase(run: Run) -> str:
    return "plan" if run.status == "planning" else "apply"


def _failed_phase(run: Run, how: str = "errored") -> dict[str, Any]:
    return {"plan_status": how} if run.status == "planning" else {"apply_status": how}


# ---- agents: what a job reads and writes --------------------------------------------------------------------


def append_log(job: Job, data: bytes) -> None:
    """Append to the phase's log, in sealed pieces."""
    kms = drivers().kms
    offset = _log_size(job.run.id, job.phase)
    for start in range(0, len(data), MAX_LOG_PIECE):
        piece = data[start : start + MAX_LOG_PIECE]
        context = _log_context(job.run.id, job.phase, offset)
        db.session.add(
            RunLog(
                run_id=job.run.id,
                phase=job.phase,
                offset=offset,
                size=len(piece),
                sealed=seal(kms, piece, context),
                kms_key_id=kms.key_id,
            )
        )
        offset += len(piece)
    db.session.commit()


def read_log(run: Run, phase: str, offset: int, limit: int) -> bytes:
    """``limit`` bytes from ``offset`` of the log as clients read it: STX, the text, and ETX once the phase ended."""
    if offset < 0 or limit < 0:
        raise InvalidInput("offset and limit must not be negative")
    size = _log_size(run.id, phase)
    if offset > size + 1:
        return b""  # past the ETX
    text_start = max(offset - 1, 0)
    text_end = offset - 1 + limit
    pieces = db.session.scalars(
        db.select(RunLog)
        .where(RunLog.run_id == run.id, RunLog.phase == phase, RunLog.offset + RunLog.size > text_start)
        .where(RunLog.offset < text_end)
        .order_by(RunLog.offset)
    )
    kms = drivers().kms
    text = b""
    first = None
    for piece in pieces:
        first = piece.offset if first is None else first
        text += unseal(kms, piece.sealed, _log_context(run.id, phase, piece.offset))
    text = text[text_start - first :] if first is not None else b""
    head = STX if offset == 0 else b""
    served = head + text
    if len(served) < limit and phase_done(run, phase) and text_start + len(text) >= size:
        served += ETX
    return served[:limit]


def phase_done(run: Run, phase: str) -> bool:
    """Whether the phase's log is complete (it ran and ended, or it will never run)."""
    return (run.plan_status if phase == "plan" else run.apply_status) in PHASE_DONE


def _log_size(run_id: str, phase: str) -> int:
    end = db.session.scalar(
        db.select(db.func.max(RunLog.offset + RunLog.size)).where(RunLog.run_id == run_id, RunLog.phase == phase)
    )
    return int(end or 0)


def open_configuration(job: Job) -> Iterator[bytes]:
    """The archive the run executes."""
    version = get_configuration_version(job.run.configuration_version_id)
    if version is None:
        raise NotFound(f"configuration version {job.run.configuration_version_id!r} no longer exists")
    return open_archive(version)


def current_state(job: Job) -> Iterator[bytes] | None:
    """The workspace's current state, or None before its first."""
    current = state_versions.get_current_version(job.run.workspace)
    return state_versions.open_version(current) if current is not None else None


def store_plan_file(job: Job, chunks: Iterable[bytes], limit: int) -> None:
    """Keep the saved plan of the plan phase (encrypted like states); the apply phase applies exactly it."""
    run = _require_phase(job, "plan")
    key = _store_object(run, "plan", chunks, limit)
    _replace_object(run, "plan_file_key", "plan_file_kms_key_id", key)


def open_plan_file(job: Job) -> Iterator[bytes]:
    """The saved plan the apply phase applies."""
    run = _require_phase(job, "apply")
    if run.plan_file_key is None:
        raise NotFound(f"run {run.id} has no saved plan")
    return drivers().kms.decrypt(drivers().storage.open(run.plan_file_key), _object_context(run, "plan"))


def store_plan_json(job: Job, body: bytes) -> None:
    """Keep ``terraform show -json`` of the saved plan; the run's resource counts and has-changes come from it."""
    run = _require_phase(job, "plan")
    try:
        plan = json.loads(body)
    except ValueError:
        raise InvalidInput("the JSON plan is not valid JSON") from None
    if not isinstance(plan, dict):
        raise InvalidInput("the JSON plan must be a JSON object (terraform show -json)")
    counts = plan_counts(plan, refresh_only=run.refresh_only)
    key = _store_object(run, "plan-json", [body], len(body))
    _replace_object(run, "plan_json_key", "plan_json_kms_key_id", key, **counts)


def plan_json(run: Run) -> bytes | None:
    """The JSON plan, or None before the plan phase stored it."""
    if run.plan_json_key is None:
        return None
    stored = drivers().storage.open(run.plan_json_key)
    return b"".join(drivers().kms.decrypt(stored, _object_context(run, "plan-json")))


def plan_counts(plan: dict[str, Any], *, refresh_only: bool = False) -> dict[str, Any]:
    """Resource additions, changes, destructions and imports of a JSON plan, and whether it changes anything."""
    counts = {"resource_additions": 0, "resource_changes": 0, "resource_destructions": 0, "resource_imports": 0}
    for change in plan.get("resource_changes") or []:
        details = change.get("change") or {}
        actions = details.get("actions") or []
        counts["resource_additions"] += "create" in actions
        counts["resource_destructions"] += "delete" in actions
        counts["resource_changes"] += actions == ["update"]
        counts["resource_imports"] += bool(details.get("importing"))
    outputs = [c.get("actions") or [] for c in (plan.get("output_changes") or {}).values() if isinstance(c, dict)]
    drift = bool(plan.get("resource_drift")) if refresh_only else False
    changed = any(counts.values()) or any(actions != ["no-op"] for actions in outputs) or drift
    return {**counts, "has_changes": changed}


def write_run_state(job: Job, body: StateBody, actor: str) -> StateVersion:
    """Store the state the apply produced through the guarded write, under the run's lock, naming the run."""
    run = _require_phase(job, "apply")
    announced = state_versions.Announced(version_id=new_id("sv"), copies={"run_id": run.id})
    written = state_versions.write_state(run.workspace, body, actor, lock_id=run.id, announced=announced)
    run.state_version_id = written.version.id
    db.session.commit()
    return written.version


def finish_phase(job: Job, outcome: str, error: str | None = None) -> Run:
    """The agent's end of a phase: the run moves on (planned, applied, errored, canceled…)."""
    run = job.run
    if outcome not in ("finished", "errored", "canceled"):
        raise InvalidInput('outcome must be "finished", "errored" or "canceled"')
    target, values = _after_phase(run, job.phase, outcome)
    if error:
        values["error_message"] = error[:MAX_ERROR]
    executing = "planning" if job.phase == "plan" else "applying"
    if not _transition(run, (executing,), target, {"lease_id": None, **values}):
        raise Conflict("this job's lease is over: its run has already ended")
    if target in FINAL:
        _ended(run)
    return run


def _after_phase(run: Run, phase: str, outcome: str) -> tuple[str, dict[str, Any]]:
    status_field = f"{phase}_status"
    if outcome != "finished":
        target = "errored" if outcome == "errored" else "canceled"
        return target, {status_field: outcome, **({"apply_status": "unreachable"} if phase == "plan" else {})}
    if phase == "apply":
        return "applied", {status_field: "finished"}
    if run.plan_only or not run.has_changes:
        return "planned_and_finished", {status_field: "finished", "apply_status": "unreachable"}
    if run.auto_apply:
        return "apply_queued", {status_field: "finished", "apply_status": "queued"}
    return "planned", {status_field: "finished"}


def _require_phase(job: Job, phase: str) -> Run:
    if job.phase != phase:
        raise Conflict(f"this job is the run's {job.phase} phase, not its {phase}")
    return job.run


def _store_object(run: Run, what: str, chunks: Iterable[bytes], limit: int) -> str:
    received, _size, _md5, digest = spool_body(
        chunks, limit, too_large=f"the {what} is larger than the limit of {limit} bytes", empty=f"the {what} is empty"
    )
    key = f"{run.workspace_id}/runs/{run.id}/{what}-{digest[:16]}"
    with received as spool:
        spool.seek(0)
        kms = drivers().kms
        encrypted = kms.encrypt(iter(lambda: spool.read(READ_CHUNK), b""), _object_context(run, what))
        drivers().storage.put(key, encrypted)
    return key


def _replace_object(run: Run, key_column: str, kms_column: str, key: str, **values: Any) -> None:
    old = getattr(run, key_column)
    setattr(run, key_column, key)
    setattr(run, kms_column, drivers().kms.key_id)
    for name, value in values.items():
        setattr(run, name, value)
    db.session.commit()
    if old and old != key:
        drivers().storage.delete(old)


# ---- keeping what runs stored -------------------------------------------------------------------------------


def stored_keys() -> set[str]:
    """Every storage key a run points at (saved plans and JSON plans), for the garbage collector."""
    keys: set[str] = set()
    for row in db.session.execute(db.select(Run.plan_file_key, Run.plan_json_key)):
        keys.update(key for key in row if key)
    return keys


def reencrypt_runs() -> int:
    """Re-encrypt what runs keep (variables, logs, saved and JSON plans) under the current key; returns how many
    pieces moved (``flask kms rotate``)."""
    kms = drivers().kms
    moved = 0
    for piece in list(db.session.scalars(db.select(RunLog).where(RunLog.kms_key_id != kms.key_id))):
        context = _log_context(piece.run_id, piece.phase, piece.offset)
        piece.sealed, piece.kms_key_id = seal(kms, unseal(kms, piece.sealed, context), context), kms.key_id
        moved += 1
    db.session.commit()
    stale = db.or_(
        Run.variables_kms_key_id != kms.key_id,
        Run.plan_file_kms_key_id != kms.key_id,
        Run.plan_json_kms_key_id != kms.key_id,
    )
    for run in list(db.session.scalars(db.select(Run).where(stale))):
        moved += _reencrypt_run(run)
    return moved


def _reencrypt_run(run: Run) -> int:
    kms, storage = drivers().kms, drivers().storage
    moved = 0
    if run.sealed_variables is not None and run.variables_kms_key_id != kms.key_id:
        plain = unseal(kms, run.sealed_variables, _variables_context(run.id))
        run.sealed_variables, run.variables_kms_key_id = seal(kms, plain, _variables_context(run.id)), kms.key_id
        db.session.commit()
        moved += 1
    for what, key_column, kms_column in (
        ("plan", "plan_file_key", "plan_file_kms_key_id"),
        ("plan-json", "plan_json_key", "plan_json_kms_key_id"),
    ):
        old_key = getattr(run, key_column)
        if old_key is None or getattr(run, kms_column) == kms.key_id:
            continue
        context = _object_context(run, what)
        plain = b"".join(kms.decrypt(storage.open(old_key), context))
        new_key = f"{old_key}-{secrets.token_hex(4)}"
        storage.put(new_key, [seal(kms, plain, context)])
        setattr(run, key_column, new_key)
        setattr(run, kms_column, kms.key_id)
        db.session.commit()
        storage.delete(old_key)  # only once the row points at the new object
        moved += 1
    return moved


def sealed_key_ids() -> set[str]:
    """Every KMS key id something of a run is encrypted under."""
    found: set[str] = set()
    for column in (Run.variables_kms_key_id, Run.plan_file_kms_key_id, Run.plan_json_kms_key_id):
        found |= set(db.session.scalars(db.select(column).where(column.is_not(None)).distinct()))
    found |= set(db.session.scalars(db.select(RunLog.kms_key_id).distinct()))
    return found - {None}


def _stamp_key(status: str) -> str:
    return status.replace("_", "-") + "-at"


def _iso(moment: datetime | None) -> str:
    return (moment or utcnow()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _variables_context(run_id: str) -> bytes:
    return f"run-variables:{run_id}".encode()


def _log_context(run_id: str, phase: str, offset: int) -> bytes:
    return f"run-log:{run_id}:{phase}:{offset}".encode()


def _object_context(run: Run, what: str) -> bytes:
    return f"run-{what}:{run.id}".encode()
