"""The metadata schema (the "query backend"): typed SQLAlchemy 2.0 models shared by every API.

State bytes live in the storage driver and locks in the lock driver; these tables hold what points at them.
Times are naive UTC (SQLite and MySQL have no time zones); MySQL gets microsecond precision explicitly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import utcnow
from app.core.ids import new_id
from app.drivers.locks.sql import lock_table
from app.drivers.sql import Name, Timestamp
from app.extensions import db

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite only autoincrements INTEGER


class Organization(db.Model):  # type: ignore[name-defined]
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("org"))
    name: Mapped[str] = mapped_column(Name(90), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(255), default="")
    external_org_id: Mapped[str | None] = mapped_column(Name(255), unique=True)
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class User(db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("user"))
    subject: Mapped[str] = mapped_column(Name(255), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class Membership(db.Model):  # type: ignore[name-defined]
    """A user belongs to an organization; roles narrow what the member may do."""

    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("org_id", "user_id", name="uq_memberships_org_user"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Workspace(db.Model):  # type: ignore[name-defined]
    """A state's home (the internal API calls it a unit); ``current_version_id`` is the atomic pointer."""

    __tablename__ = "workspaces"
    __table_args__ = (sa.UniqueConstraint("org_id", "name", name="uq_workspaces_org_name"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("ws"))
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Name(90))
    execution_mode: Mapped[str] = mapped_column(sa.String(20), default="local")
    terraform_version: Mapped[str] = mapped_column(sa.String(40), default="latest")
    auto_apply: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    working_directory: Mapped[str] = mapped_column(sa.String(255), default="")
    engine: Mapped[str] = mapped_column(sa.String(20), default="terraform", server_default="terraform")
    # The pool whose agents run the workspace's runs in execution mode "agent".
    agent_pool_id: Mapped[str | None] = mapped_column(sa.ForeignKey("agent_pools.id", ondelete="SET NULL"))
    current_version_id: Mapped[str | None] = mapped_column(sa.String(40))
    version_counter: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")
    # Filled by the query that resolves a request's workspace (``app.repositories.workspaces``), so the state read
    # after it costs no second query; never loaded on its own. ``get_current_version`` checks it against
    # ``current_version_id``, which is the truth.
    loaded_current_version: Mapped[StateVersion | None] = relationship(
        primaryjoin="foreign(Workspace.current_version_id) == StateVersion.id", viewonly=True, lazy="raise"
    )
    # Loaded only where tags are shown or changed (the TFC API), never on the state read and write path.
    tags: Mapped[list[WorkspaceTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="WorkspaceTag.key"
    )


class WorkspaceTag(db.Model):  # type: ignore[name-defined]
    """One tag of a workspace: a key with an optional value (a plain TFE tag is a key whose value is empty)."""

    __tablename__ = "workspace_tags"
    __table_args__ = (sa.Index("ix_workspace_tags_key_value", "key", "value"),)

    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(Name(255), primary_key=True)
    value: Mapped[str] = mapped_column(Name(255), default="")


class StateVersion(db.Model):  # type: ignore[name-defined]
    """One immutable accepted write; ``number`` orders versions within a workspace and guards concurrent writers.

    The ``json_*`` columns point at the JSON copies Terraform sends beside the state (its external JSON format and
    its outputs with exact types), each an encrypted object of its own; versions without them have NULLs.
    """

    __tablename__ = "state_versions"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "number", name="uq_state_versions_workspace_number"),
        sa.Index("ix_state_versions_workspace_created", "workspace_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("sv"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(sa.Integer)
    serial: Mapped[int] = mapped_column(sa.BigInteger)
    lineage: Mapped[str] = mapped_column(sa.String(255), default="")
    md5: Mapped[str] = mapped_column(sa.String(32))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    storage_key: Mapped[str] = mapped_column(sa.String(512))
    kms_key_id: Mapped[str] = mapped_column(sa.String(255))
    outputs: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    resource_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    terraform_version: Mapped[str | None] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20), default="finalized")
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    json_state_key: Mapped[str | None] = mapped_column(sa.String(512))
    json_state_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    json_state_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    json_state_kms_key_id: Mapped[str | None] = mapped_column(sa.String(255))
    json_outputs_key: Mapped[str | None] = mapped_column(sa.String(512))
    json_outputs_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    json_outputs_kms_key_id: Mapped[str | None] = mapped_column(sa.String(255))
    # The remote run whose apply wrote this version (None for every write from a client).
    run_id: Mapped[str | None] = mapped_column(sa.String(40))


# The ``local`` lock driver's table; the driver owns its shape and the migrations create it.
locks = lock_table("locks", db.metadata)


class ApiToken(db.Model):  # type: ignore[name-defined]
    """An API token: only the SHA-256 of the secret is kept; ``scope`` and ``workspace_name`` narrow it."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("at"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(sa.String(20), default="full")
    # user (a person's), service (organization-wide, made by an operator), organization (the TFE API's one
    # organization token), agent (runs jobs only; ``agent_pool_id`` narrows it to one pool)
    kind: Mapped[str] = mapped_column(sa.String(20), default="user", server_default="user")
    agent_pool_id: Mapped[str | None] = mapped_column(sa.ForeignKey("agent_pools.id", ondelete="CASCADE"))
    workspace_name: Mapped[str | None] = mapped_column(Name(90))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)

    organization: Mapped[Organization] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship(lazy="joined")


class WorkspaceVariable(db.Model):  # type: ignore[name-defined]
    """A Terraform (``terraform``) or environment (``env``) variable that runs of the workspace receive.

    The value is sealed by the KMS driver, bound to the variable's id; a ``sensitive`` value is write-only.
    ``version`` grows with every change (TFE's ``version-id``).
    """

    __tablename__ = "workspace_variables"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "key", "category"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("var"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Name(128))
    category: Mapped[str] = mapped_column(sa.String(16))
    hcl: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    sensitive: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    description: Mapped[str] = mapped_column(sa.String(512), default="")
    sealed_value: Mapped[bytes] = mapped_column(sa.LargeBinary)
    kms_key_id: Mapped[str] = mapped_column(sa.String(255))
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class ConfigurationVersion(db.Model):  # type: ignore[name-defined]
    """An uploaded archive of Terraform configuration (``.tar.gz``) that remote runs of the workspace execute.

    ``pending`` until the upload arrives, then ``uploaded`` (checked to unpack safely, stored encrypted under
    ``storage_key``) or ``errored`` with the reason in ``error_message``.
    """

    __tablename__ = "configuration_versions"
    __table_args__ = (sa.Index("ix_configuration_versions_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("cv"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    speculative: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    auto_queue_runs: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    error_message: Mapped[str | None] = mapped_column(sa.String(1024))
    storage_key: Mapped[str | None] = mapped_column(sa.String(255))
    kms_key_id: Mapped[str | None] = mapped_column(sa.String(255))
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    uploaded_at: Mapped[datetime | None] = mapped_column(Timestamp)


class AgentPool(db.Model):  # type: ignore[name-defined]
    """A named group of agents of one organization; agent tokens may be limited to one pool."""

    __tablename__ = "agent_pools"
    __table_args__ = (sa.UniqueConstraint("org_id", "name"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("apool"))
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Name(90))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(sa.String(255))


class Run(db.Model):  # type: ignore[name-defined]
    """A remote plan, and apply, of one configuration version in one workspace (``app.repositories.runs``).

    ``status`` is the run's place in the state machine; ``plan_status``/``apply_status`` are the phases' own
    statuses as TFE shows them. ``lease_id`` names the claim of the agent executing a phase; the agent renews
    ``lease_expires_at`` and a run whose lease runs out is errored. Run variables are KMS-sealed (they may hold
    secrets); the saved plan and its JSON are encrypted storage objects like states.
    """

    __tablename__ = "runs"
    __table_args__ = (
        sa.Index("ix_runs_workspace_created", "workspace_id", "created_at"),
        sa.Index("ix_runs_org_status", "org_id", "status"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("run"))
    workspace_id: Mapped[str] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(sa.String(40))
    configuration_version_id: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(32), default="pending")
    message: Mapped[str] = mapped_column(sa.String(512), default="")
    is_destroy: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    refresh: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    refresh_only: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    plan_only: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    auto_apply: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    target_addrs: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    replace_addrs: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    variable_keys: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    sealed_variables: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    variables_kms_key_id: Mapped[str | None] = mapped_column(sa.String(255))
    terraform_version: Mapped[str] = mapped_column(sa.String(40), default="latest")
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    status_timestamps: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    plan_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    apply_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    plan_status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    apply_status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    has_changes: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    resource_additions: Mapped[int] = mapped_column(sa.Integer, default=0)
    resource_changes: Mapped[int] = mapped_column(sa.Integer, default=0)
    resource_destructions: Mapped[int] = mapped_column(sa.Integer, default=0)
    resource_imports: Mapped[int] = mapped_column(sa.Integer, default=0)
    plan_file_key: Mapped[str | None] = mapped_column(sa.String(255))
    plan_file_kms_key_id: Mapped[str | None] = mapped_column(sa.String(255))
    plan_json_key: Mapped[str | None] = mapped_column(sa.String(255))
    plan_json_kms_key_id: Mapped[str | None] = mapped_column(sa.String(255))
    state_version_id: Mapped[str | None] = mapped_column(sa.String(40))
    error_message: Mapped[str | None] = mapped_column(sa.String(1024))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(Timestamp)
    force_canceled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    agent_token_id: Mapped[str | None] = mapped_column(sa.String(40))
    agent_name: Mapped[str | None] = mapped_column(sa.String(255))
    lease_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)

    workspace: Mapped[Workspace] = relationship(lazy="joined")


class RunLog(db.Model):  # type: ignore[name-defined]
    """One appended piece of a phase's log, KMS-sealed; ``offset`` is the number of log bytes before it."""

    __tablename__ = "run_logs"
    __table_args__ = (sa.UniqueConstraint("run_id", "phase", "offset", name="uq_run_logs_run_phase_offset"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(sa.String(10))
    offset: Mapped[int] = mapped_column(sa.BigInteger)
    size: Mapped[int] = mapped_column(sa.Integer)
    sealed: Mapped[bytes] = mapped_column(sa.LargeBinary)
    kms_key_id: Mapped[str] = mapped_column(sa.String(255))


class SigningKey(db.Model):  # type: ignore[name-defined]
    """A key that signs the access tokens of ``/v1/auth``, published in ``/oidc/jwks.json`` by ``kid``.

    The private key is stored encrypted by the KMS driver (``kms_key_id``). ``slot`` is 1 for the key that signs
    now (unique: concurrent first use creates one key) and NULL once retired; a retired key stays published, so
    tokens it signed verify until they expire, until it is pruned.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(sa.String(10))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    private_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    kms_key_id: Mapped[str] = mapped_column(sa.String(255))
    slot: Mapped[int | None] = mapped_column(sa.Integer, unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(Timestamp)


class AuditEvent(db.Model):  # type: ignore[name-defined]
    """Who did what to which workspace, when, and how it ended. Never holds secrets or state contents."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_org_at", "org_id", "at"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(255))
    org_id: Mapped[str | None] = mapped_column(sa.String(40))
    workspace_id: Mapped[str | None] = mapped_column(sa.String(40))
    workspace_name: Mapped[str | None] = mapped_column(Name(90))
    action: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(sa.String(64))


class Role(db.Model):  # type: ignore[name-defined]
    """A named set of permissions within one organization; ``builtin`` roles (admin, default) cannot be deleted."""

    __tablename__ = "roles"
    __table_args__ = (sa.UniqueConstraint("org_id", "name", name="uq_roles_org_name"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("role"))
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Name(90))
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    builtin: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class Permission(db.Model):  # type: ignore[name-defined]
    """A list of rules ``{"actions","resources","effect"}`` within one organization; resources are workspace names."""

    __tablename__ = "permissions"
    __table_args__ = (sa.UniqueConstraint("org_id", "name", name="uq_permissions_org_name"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("perm"))
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Name(90))
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    rules: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    builtin: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class RolePermission(db.Model):  # type: ignore[name-defined]
    """A permission attached to a role (both of the same organization)."""

    __tablename__ = "role_permissions"
    __table_args__ = (sa.UniqueConstraint("role_id", "permission_id", name="uq_role_permissions_role_permission"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    role_id: Mapped[str] = mapped_column(sa.ForeignKey("roles.id", ondelete="CASCADE"))
    permission_id: Mapped[str] = mapped_column(sa.ForeignKey("permissions.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class RoleAssignment(db.Model):  # type: ignore[name-defined]
    """A role given to a user in the role's organization; a member without any assignment may do nothing."""

    __tablename__ = "role_assignments"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "role_id", name="uq_role_assignments_user_role"),
        sa.Index("ix_role_assignments_org_user", "org_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    role_id: Mapped[str] = mapped_column(sa.ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class AuthorizationCode(db.Model):  # type: ignore[name-defined]
    """A one-time code of ``terraform login``: bound to the client, its redirect URI and PKCE challenge.

    Only the SHA-256 of the code is kept. ``used_at`` marks redemption (set once, by a conditional UPDATE);
    ``token_id`` is the token it bought, revoked if the code is ever presented again (RFC 6749, section 4.1.2).
    """

    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(sa.String(64))
    redirect_uri: Mapped[str] = mapped_column(sa.String(255))
    code_challenge: Mapped[str] = mapped_column(sa.String(128))
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    token_id: Mapped[str | None] = mapped_column(sa.String(40))


class RefreshToken(db.Model):  # type: ignore[name-defined]
    """A refresh token of ``/v1/auth``: single use, one of a family that began with one id-token exchange.

    Only the SHA-256 is kept. ``used_at`` is set once, by a conditional UPDATE; a token presented after that is a
    replay, and revokes the family (every refresh token with its ``family_id`` and their ``access_token_id``s).
    """

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    access_token_id: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
