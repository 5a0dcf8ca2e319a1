"""configuration versions: the archives of Terraform configuration that remote runs execute

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

The archive itself is an object of the storage driver, encrypted like states (``storage_key``, ``kms_key_id``);
the row says where it is and how it ended: ``pending`` until its upload arrives, then ``uploaded`` or ``errored``
(with the reason it was refused).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _timestamp():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'configuration_versions',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('workspace_id', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('speculative', sa.Boolean(), nullable=False),
        sa.Column('auto_queue_runs', sa.Boolean(), nullable=False),
        sa.Column('error_message', sa.String(length=1024), nullable=True),
        sa.Column('storage_key', sa.String(length=255), nullable=True),
        sa.Column('kms_key_id', sa.String(length=255), nullable=True),
        sa.Column('size', sa.BigInteger(), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.Column('created_by', sa.String(length=255), nullable=True),
        sa.Column('created_at', _timestamp(), nullable=False),
        sa.Column('uploaded_at', _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'],
                                name='fk_configuration_versions_workspace_id_workspaces', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_configuration_versions'),
    )
    with op.batch_alter_table('configuration_versions', schema=None) as batch_op:
        batch_op.create_index('ix_configuration_versions_workspace_created', ['workspace_id', 'created_at'],
                              unique=False)


def downgrade():
    # The table takes its index with it (InnoDB refuses to drop an index its foreign key uses).
    op.drop_table('configuration_versions')
