"""What every agent API view starts from: the calling agent (agent tokens only) and the job its lease names."""

from __future__ import annotations

from typing import Any

from flask import g, request

from app.auth import authenticate_agent
from app.auth.principal import Principal
from app.repositories import runs
from app.repositories.runs import AgentIdentity, Job

MAX_AGENT_NAME = 255


def current_agent() -> Principal:
    """The calling agent, authenticated once per request: 401 for a missing or bad token, 403 for any token but
    an agent token."""
    principal: Principal | None = g.get("principal")
    if principal is None:
        principal = authenticate_agent(request.headers.get("Authorization"))
        g.principal = principal  # the request log names the caller from here
    return principal


def agent_identity(name: str = "") -> AgentIdentity:
    """The calling agent as the run rules know it: its token's organization, the token, its pool."""
    principal = current_agent()
    assert principal.org_id is not None and principal.token_id is not None  # every agent token has both
    return AgentIdentity(
        org_id=principal.org_id, token_id=principal.token_id, pool_id=principal.agent_pool_id, name=name
    )


def leased_job(lease_id: str) -> Job:
    """The job of ``lease_id`` if it is the caller's: 404 for another agent's, 409 once the lease is over."""
    return runs.job_for_lease(lease_id, agent_identity())


def job_document(job: Job, lease_seconds: int, timeout_seconds: int) -> dict[str, Any]:
    """A claimed job as the agent reads it, with the variables Terraform needs (sensitive ones revealed: only
    the agent that runs the job ever gets them)."""
    run = job.run
    return {
        "run_id": run.id,
        "phase": job.phase,
        "lease_id": job.lease_id,
        "lease_seconds": lease_seconds,
        "heartbeat_seconds": max(lease_seconds / 3, 1),
        "timeout_seconds": timeout_seconds,
        "organization": run.workspace.organization.name,
        "workspace": run.workspace.name,
        "working_directory": run.workspace.working_directory or "",
        "terraform_version": run.terraform_version,
        "is_destroy": run.is_destroy,
        "refresh": run.refresh,
        "refresh_only": run.refresh_only,
        "plan_only": run.plan_only,
        "target_addrs": list(run.target_addrs or []),
        "replace_addrs": list(run.replace_addrs or []),
        "variables": runs.job_variables(run),
    }
