"""Admin commands under ``flask``: organizations, users, tokens, agent pools and tokens, workspaces, versions, locks."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from app.core.errors import StatesmanError
from app.extensions import drivers
from app.models import ApiToken, Organization, Workspace
from app.repositories import (
    agent_pools,
    configuration_versions,
    orgs,
    rbac,
    runs,
    signing_keys,
    state_versions,
    tokens,
    users,
    variables,
    workspaces,
)
from app.repositories.audit import record_event
from app.repositories.locks import force_unlock_workspace, get_lock
from config import ConfigError, parse_duration

orgs_cli = AppGroup("orgs", help="Manage organizations.")
users_cli = AppGroup("users", help="Manage users and memberships.")
tokens_cli = AppGroup("tokens", help="Create, list and revoke API tokens.")
workspaces_cli = AppGroup("workspaces", help="List workspaces, roll back, force-unlock.")
versions_cli = AppGroup("versions", help="List and download state versions.")
kms_cli = AppGroup("kms", help="Encryption key rotation.")
agents_cli = AppGroup("agents", help="Agent pools and agent tokens (for Statesman agents, which run jobs).")
pools_cli = AppGroup("pools", help="Create and list agent pools.")
agent_tokens_cli = AppGroup("token", help="Create, list and revoke agent tokens.")
agents_cli.add_command(pools_cli)
agents_cli.add_command(agent_tokens_cli)


@dataclass(frozen=True)
class OperatorGuard:
    """The operator at the server's command line: every workspace rule applies, every permission is granted."""

    workspace: Workspace
    actor: str

    def allows(self, action: str) -> bool:
        return True

    def require(self, action: str) -> None:
        return None


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _domain_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print domain errors as one line and exit 1 instead of a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (StatesmanError, ConfigError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def _org(name: str) -> Organization:
    return orgs.require_org(name)


def _workspace(org_name: str, name: str) -> Workspace:
    return workspaces.require_workspace(_org(org_name), name)


@orgs_cli.command("create")
@click.argument("name")
@click.option("--display-name", default="", help="Human-readable name (defaults to NAME).")
@click.option("--external-id", default=None, help="The organization's id at the identity provider.")
@_domain_errors
def create_org(name: str, display_name: str, external_id: str | None) -> None:
    """Create organization NAME."""
    org = orgs.create_org(name, display_name, external_id, created_by=_actor())
    click.echo(f"created organization {org.name} ({org.id})")


@orgs_cli.command("list")
def list_orgs() -> None:
    """List organizations."""
    for org in orgs.list_orgs():
        click.echo(f"{org.id}\t{org.name}\t{org.display_name}")


@users_cli.command("create")
@click.argument("subject")
@click.option("--org", "org_name", required=True, help="Organization the user joins.")
@click.option("--email", default=None)
@click.option(
    "--role", default=None, help="Role to give (id or name). Default: admin, for a member who has no role in --org yet."
)
@_domain_errors
def create_user(subject: str, org_name: str, email: str | None, role: str | None) -> None:
    """Create user SUBJECT (idempotent), make them a member of --org and give them a role."""
    org = _org(org_name)
    user = users.ensure_user(subject, email)
    users.set_email(user, email, _actor(), "operator (flask users create)", org.id)
    orgs.add_member(org, user, _actor())
    # Operators create members from the command line to hand out tokens: without a role a member may do nothing,
    # so a member without any role becomes admin (as every member was before roles existed) unless --role says.
    if role is None and not rbac.roles_of_member(org, user):
        role = rbac.ADMIN_ROLE
    if role is not None:
        rbac.assign_role(org, user, rbac.require_role(org, role), _actor())
    roles = ", ".join(r.name for r in rbac.roles_of_member(org, user)) or "none"
    click.echo(f"user {user.subject} is a member of {org.name} (roles: {roles})")


@tokens_cli.command("create")
@click.option("--org", "org_name", required=True, help="Organization the token works in.")
@click.option("--user", "subject", default=None, help="User the token acts as (omit for an organization token).")
@click.option("--read-only", is_flag=True, help="May read state, never write or lock.")
@click.option("--outputs-only", is_flag=True, help="May read outputs only (terraform_remote_state consumers).")
@click.option("--workspace", default=None, help="Limit the token to one workspace.")
@click.option("--expires-in", default=None, help="Lifetime such as 12h or 30d (default: no expiry).")
@click.option("--description", default="", help="What the token is for.")
@_domain_errors
def create_token(
    org_name: str,
    subject: str | None,
    read_only: bool,
    outputs_only: bool,
    workspace: str | None,
    expires_in: str | None,
    description: str,
) -> None:
    """Create an API token and print it once."""
    from datetime import timedelta

    org = _org(org_name)
    user = None
    if subject is not None:
        user = users.get_user_by_subject(subject)
        if user is None or not orgs.is_member(org.id, user.id):
            raise StatesmanError(
                f"user {subject!r} is not a member of {org.name!r}; run: flask users create {subject} --org {org.name}"
            )
    scope = "outputs-only" if outputs_only else "read-only" if read_only else "full"
    lifetime = timedelta(seconds=parse_duration("--expires-in", expires_in)) if expires_in else None
    token, secret = tokens.create_token(
        org,
        user,
        _actor(),
        kind="user" if user is not None else "service",
        scope=scope,
        expires_in=lifetime,
        workspace_name=workspace,
        description=description,
    )
    click.echo(
        f"created token {token.id} ({scope}) for {subject or 'organization ' + org.name}; it is shown only once:",
        err=True,
    )
    click.echo(secret)


@tokens_cli.command("list")
@click.option("--org", "org_name", required=True)
@_domain_errors
def list_tokens(org_name: str) -> None:
    """List an organization's tokens (never their secrets), one per line, tab-separated.

    last_used lags real use by up to tokens.LAST_USED_GRANULARITY plus tokens.VERIFIED_TTL_SECONDS: it is written at
    most that often, so that authenticating a request does not cost a database write.
    """
    for token in tokens.list_tokens(_org(org_name)):
        click.echo(_token_line(token))


def _token_line(token: ApiToken) -> str:
    state = "revoked" if token.revoked_at else "active"
    owner = token.user.subject if token.user else "(organization)"
    # The description is free text: keep it on its line and in its column.
    description = " ".join(token.description.split())
    pool = f"\tpool={token.agent_pool_id}" if token.agent_pool_id else ""
    return (
        f"{token.id}\t{owner}\t{token.scope}\t{state}\tworkspace={token.workspace_name or '*'}\tkind={token.kind}"
        f"{pool}\tcreated={_when(token.created_at)}\tlast_used={_when(token.last_used_at, 'never')}"
        f"\texpires={_when(token.expires_at, 'never')}\tdescription={description}"
    )


def _when(at: datetime | None, missing: str = "-") -> str:
    return f"{at.isoformat(timespec='seconds')}Z" if at else missing


@tokens_cli.command("revoke")
@click.argument("token_id")
@_domain_errors
def revoke_token(token_id: str) -> None:
    """Revoke the token TOKEN_ID."""
    tokens.revoke_token(token_id, _actor())
    click.echo(f"revoked token {token_id}")


@pools_cli.command("create")
@click.argument("name")
@click.option("--org", "org_name", required=True, help="Organization the pool belongs to.")
@_domain_errors
def create_agent_pool(name: str, org_name: str) -> None:
    """Create agent pool NAME."""
    pool = agent_pools.create_pool(_org(org_name), name, _actor())
    click.echo(f"created agent pool {pool.name} ({pool.id})")


@pools_cli.command("list")
@click.option("--org", "org_name", required=True)
@_domain_errors
def list_agent_pools(org_name: str) -> None:
    """List an organization's agent pools, one per line, tab-separated."""
    for pool in agent_pools.list_pools(_org(org_name)):
        click.echo(f"{pool.id}\t{pool.name}\tcreated={_when(pool.created_at)}\tby={pool.created_by or '-'}")


@agent_tokens_cli.command("create")
@click.option("--org", "org_name", required=True, help="Organization the agents work for.")
@click.option("--pool", "pool_ref", default=None, help="Limit the token to this agent pool (name or id).")
@click.option("--description", default="", help="What the token is for (which agent host).")
@click.option("--expires-in", default=None, help="Lifetime such as 12h or 30d (default: no expiry).")
@_domain_errors
def create_agent_token(org_name: str, pool_ref: str | None, description: str, expires_in: str | None) -> None:
    """Create an agent token and print it once; it authenticates Statesman agents only."""
    from datetime import timedelta

    org = _org(org_name)
    pool = agent_pools.require_pool(org, pool_ref) if pool_ref else None
    lifetime = timedelta(seconds=parse_duration("--expires-in", expires_in)) if expires_in else None
    token, secret = tokens.create_token(
        org, None, _actor(), kind="agent", agent_pool=pool, description=description, expires_in=lifetime
    )
    where = f"agent pool {pool.name}" if pool else f"organization {org.name}"
    click.echo(f"created agent token {token.id} for {where}; it is shown only once:", err=True)
    click.echo(secret)


@agent_tokens_cli.command("list")
@click.option("--org", "org_name", required=True)
@_domain_errors
def list_agent_tokens(org_name: str) -> None:
    """List an organization's live agent tokens (never their secrets), one per line, tab-separated."""
    org = _org(org_name)
    names = {pool.id: pool.name for pool in agent_pools.list_pools(org)}
    for token in tokens.list_agent_tokens(org):
        description = " ".join(token.description.split())
        pool = names.get(token.agent_pool_id or "", "*")
        click.echo(
            f"{token.id}\tpool={pool}\tcreated={_when(token.created_at)}"
            f"\tlast_used={_when(token.last_used_at, 'never')}\texpires={_when(token.expires_at, 'never')}"
            f"\tdescription={description}"
        )


@agent_tokens_cli.command("revoke")
@click.argument("token_id")
@_domain_errors
def revoke_agent_token(token_id: str) -> None:
    """Revoke the agent token TOKEN_ID."""
    token = tokens.get_token(token_id)
    if token is None or token.kind != "agent":
        raise StatesmanError(f"agent token {token_id!r} not found (flask agents token list --org ORG shows them)")
    tokens.revoke_token(token_id, _actor())
    click.echo(f"revoked agent token {token_id}")


@workspaces_cli.command("list")
@click.option("--org", "org_name", required=True)
@_domain_errors
def list_workspaces(org_name: str) -> None:
    """List an organization's workspaces with their current serial and lock holder."""
    found, _ = workspaces.list_workspaces(_org(org_name))
    for workspace in found:
        current = state_versions.get_current_version(workspace)
        lock = get_lock(workspace)
        click.echo(
            f"{workspace.id}\t{workspace.name}\tserial={current.serial if current else '-'}"
            f"\tlocked_by={lock.lock_id if lock else '-'}"
        )


@workspaces_cli.command("force-unlock")
@click.option("--org", "org_name", required=True)
@click.option("--workspace", required=True)
@_domain_errors
def force_unlock(org_name: str, workspace: str) -> None:
    """Clear the workspace's lock, whoever holds it."""
    released = force_unlock_workspace(_workspace(org_name, workspace), _actor())
    click.echo(f"released lock {released.lock_id}" if released else "workspace was not locked")


@workspaces_cli.command("rollback")
@click.option("--org", "org_name", required=True)
@click.option("--workspace", required=True)
@click.option("--version", "version_id", required=True, help="The state version to restore.")
@_domain_errors
def rollback(org_name: str, workspace: str, version_id: str) -> None:
    """Make an earlier version current again (as a new version with serial = current + 1)."""
    found = _workspace(org_name, workspace)
    version = state_versions.get_version(found, version_id)
    if version is None:
        raise StatesmanError(f"version {version_id!r} not found in workspace {workspace!r}")
    result = state_versions.rollback_to(OperatorGuard(found, _actor()), version)
    click.echo(f"restored {version_id} as {result.version.id} (serial {result.version.serial})")


@versions_cli.command("list")
@click.option("--org", "org_name", required=True)
@click.option("--workspace", required=True)
@_domain_errors
def list_versions(org_name: str, workspace: str) -> None:
    """List a workspace's state versions, newest first."""
    found = _workspace(org_name, workspace)
    versions, _ = state_versions.list_versions(found)
    for version in versions:
        marker = "*" if version.id == found.current_version_id else " "
        click.echo(
            f"{marker} {version.id}\tserial={version.serial}\tsize={version.size}"
            f"\t{version.created_at.isoformat()}Z\tby={version.created_by}"
        )


@versions_cli.command("download")
@click.option("--org", "org_name", required=True)
@click.option("--workspace", required=True)
@click.option("--version", "version_id", default=None, help="Default: the current version.")
@click.option("--output", "-o", type=click.File("wb"), default="-", help="File to write (default: stdout).")
@_domain_errors
def download_version(org_name: str, workspace: str, version_id: str | None, output: Any) -> None:
    """Write a state version's exact bytes."""
    found = _workspace(org_name, workspace)
    version = state_versions.get_version(found, version_id) if version_id else state_versions.get_current_version(found)
    if version is None:
        raise StatesmanError("no such state version")
    for chunk in state_versions.open_version(version):
        output.write(chunk)


@kms_cli.command("rotate")
@_domain_errors
def rotate_keys() -> None:
    """Re-encrypt every stored version under the current key (old keys must stay configured until it ends)."""
    _require_rotation_keys()
    total = state_versions.count_versions_needing_rotation()
    click.echo(f"{total} version(s) to re-encrypt under the current key")
    done = 0
    for version in state_versions.versions_needing_rotation():
        state_versions.reencrypt_version(version)
        done += 1
        if done % 50 == 0 or done == total:
            click.echo(f"re-encrypted {done}/{total}")
    resealed = signing_keys.reseal_signing_keys()
    values = variables.reseal_variables()
    archives = configuration_versions.reencrypt_archives()
    run_pieces = runs.reencrypt_runs()
    record_event(
        "kms.rotate",
        "ok",
        _actor(),
        versions=done,
        signing_keys=resealed,
        variables=values,
        archives=archives,
        run_pieces=run_pieces,
    )
    click.echo(
        f"done: {done} version(s), {resealed} signing key(s), {values} variable(s), {archives} configuration "
        f"archive(s) and {run_pieces} piece(s) of runs (logs, plans, run variables) re-encrypted; the old keys can "
        "be removed from KMS_OLD_KEYS"
    )


def _require_rotation_keys() -> None:
    """Refuse before touching anything unless there is a current key and every stored version is readable here."""
    kms = drivers().kms
    if kms.name == "none":
        raise StatesmanError(
            "KMS_BACKEND=none: there is no current key to re-encrypt under; configure the new key first"
        )
    stored = (
        state_versions.stored_key_ids()
        | signing_keys.sealed_key_ids()
        | variables.sealed_key_ids()
        | configuration_versions.sealed_key_ids()
        | runs.sealed_key_ids()
    )
    unknown = sorted(key_id for key_id in stored if not kms.knows(key_id))
    if unknown:
        raise StatesmanError(
            f"versions are stored under key(s) {', '.join(unknown)}, which this command does not have: configure "
            "the new key as the current one and every old key (KMS_OLD_KEYS) here and on every server, then rotate"
        )
    click.echo(
        f"current key: {kms.key_id}; every server must already have it configured, or it cannot read the versions "
        "re-encrypted now",
        err=True,
    )


def register_admin_commands(app: Flask) -> None:
    """Attach the admin command groups to ``app``."""
    for group in (orgs_cli, users_cli, tokens_cli, agents_cli, workspaces_cli, versions_cli, kms_cli):
        app.cli.add_command(group)
