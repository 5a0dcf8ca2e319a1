"""workspace variables (terraform and env categories; values sealed by the KMS driver)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Every value is stored encrypted, bound to the variable's id; ``sensitive`` values are never returned by any API.
A key is unique per workspace and category (a Terraform variable and an environment variable may share a name).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _timestamp():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def _name(length):
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation='utf8mb4_bin'), 'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'workspace_variables',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('workspace_id', sa.String(length=40), nullable=False),
        sa.Column('key', _name(128), nullable=False),
        sa.Column('category', sa.String(length=16), nullable=False),
        sa.Column('hcl', sa.Boolean(), nullable=False),
        sa.Column('sensitive', sa.Boolean(), nullable=False),
        sa.Column('description', sa.String(length=512), nullable=False),
        sa.Column('sealed_value', sa.LargeBinary(), nullable=False),
        sa.Column('kms_key_id', sa.String(length=255), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', _timestamp(), nullable=False),
        sa.Column('updated_at', _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'],
                                name='fk_workspace_variables_workspace_id_workspaces', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_workspace_variables'),
        sa.UniqueConstraint('workspace_id', 'key', 'category', name='uq_workspace_variables_workspace_id'),
    )


def downgrade():
    op.drop_table('workspace_variables')
