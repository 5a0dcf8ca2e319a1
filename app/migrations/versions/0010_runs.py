"""remote runs: runs and their logs, the pool of an agent-mode workspace, the run that wrote a state version

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

A run is the queue entry and the history entry at once: its ``status`` is the state machine, ``lease_id`` and
``lease_expires_at`` the claim of the agent executing it. Logs are appended in sealed pieces (``run_logs``).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def _timestamp():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'runs',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('workspace_id', sa.String(length=40), nullable=False),
        sa.Column('org_id', sa.String(length=40), nullable=False),
        sa.Column('configuration_version_id', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('message', sa.String(length=512), nullable=False),
        sa.Column('is_destroy', sa.Boolean(), nullable=False),
        sa.Column('refresh', sa.Boolean(), nullable=False),
        sa.Column('refresh_only', sa.Boolean(), nullable=False),
        sa.Column('plan_only', sa.Boolean(), nullable=False),
        sa.Column('auto_apply', sa.Boolean(), nullable=False),
        sa.Column('target_addrs', sa.JSON(), nullable=False),
        sa.Column('replace_addrs', sa.JSON(), nullable=False),
        sa.Column('variable_keys', sa.JSON(), nullable=False),
        sa.Column('sealed_variables', sa.LargeBinary(), nullable=True),
        sa.Column('variables_kms_key_id', sa.String(length=255), nullable=True),
        sa.Column('terraform_version', sa.String(length=40), nullable=False),
        sa.Column('created_by', sa.String(length=255), nullable=True),
        sa.Column('created_at', _timestamp(), nullable=False),
        sa.Column('status_timestamps', sa.JSON(), nullable=False),
        sa.Column('plan_id', sa.String(length=40), nullable=False),
        sa.Column('apply_id', sa.String(length=40), nullable=False),
        sa.Column('plan_status', sa.String(length=20), nullable=False),
        sa.Column('apply_status', sa.String(length=20), nullable=False),
        sa.Column('has_changes', sa.Boolean(), nullable=False),
        sa.Column('resource_additions', sa.Integer(), nullable=False),
        sa.Column('resource_changes', sa.Integer(), nullable=False),
        sa.Column('resource_destructions', sa.Integer(), nullable=False),
        sa.Column('resource_imports', sa.Integer(), nullable=False),
        sa.Column('plan_file_key', sa.String(length=255), nullable=True),
        sa.Column('plan_file_kms_key_id', sa.String(length=255), nullable=True),
        sa.Column('plan_json_key', sa.String(length=255), nullable=True),
        sa.Column('plan_json_kms_key_id', sa.String(length=255), nullable=True),
        sa.Column('state_version_id', sa.String(length=40), nullable=True),
        sa.Column('error_message', sa.String(length=1024), nullable=True),
        sa.Column('cancel_requested_at', _timestamp(), nullable=True),
        sa.Column('force_canceled_at', _timestamp(), nullable=True),
        sa.Column('agent_token_id', sa.String(length=40), nullable=True),
        sa.Column('agent_name', sa.String(length=255), nullable=True),
        sa.Column('lease_id', sa.String(length=64), nullable=True),
        sa.Column('lease_expires_at', _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name='fk_runs_workspace_id_workspaces',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_runs'),
        sa.UniqueConstraint('plan_id', name='uq_runs_plan_id'),
        sa.UniqueConstraint('apply_id', name='uq_runs_apply_id'),
        sa.UniqueConstraint('lease_id', name='uq_runs_lease_id'),
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_workspace_created', ['workspace_id', 'created_at'], unique=False)
        batch_op.create_index('ix_runs_org_status', ['org_id', 'status'], unique=False)
    op.create_table(
        'run_logs',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('run_id', sa.String(length=40), nullable=False),
        sa.Column('phase', sa.String(length=10), nullable=False),
        sa.Column('offset', sa.BigInteger(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sealed', sa.LargeBinary(), nullable=False),
        sa.Column('kms_key_id', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name='fk_run_logs_run_id_runs', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_run_logs'),
        sa.UniqueConstraint('run_id', 'phase', 'offset', name='uq_run_logs_run_phase_offset'),
    )
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agent_pool_id', sa.String(length=40), nullable=True))
        batch_op.create_foreign_key('fk_workspaces_agent_pool_id_agent_pools', 'agent_pools', ['agent_pool_id'],
                                    ['id'], ondelete='SET NULL')
    with op.batch_alter_table('state_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('run_id', sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table('state_versions', schema=None) as batch_op:
        batch_op.drop_column('run_id')
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_constraint('fk_workspaces_agent_pool_id_agent_pools', type_='foreignkey')
        batch_op.drop_column('agent_pool_id')
    op.drop_table('run_logs')
    op.drop_table('runs')
