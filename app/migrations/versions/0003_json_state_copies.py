"""JSON copies of a state version (Terraform's json-state and json-state-outputs), encrypted in the storage driver

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Each copy is an object of its own: the row keeps its storage key, SHA-256 (a retried upload of the same bytes is
recognised) and the key it was encrypted with (key rotation re-encrypts copies too). Every column is nullable:
versions written before this revision, and writes through the http backend, have no JSON copies. The index serves
"the newest version of a workspace" (is an upload still pending?).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_COLUMNS = (
    ('json_state_key', lambda: sa.String(length=512)),
    ('json_state_sha256', lambda: sa.String(length=64)),
    ('json_state_size', lambda: sa.BigInteger()),
    ('json_state_kms_key_id', lambda: sa.String(length=255)),
    ('json_outputs_key', lambda: sa.String(length=512)),
    ('json_outputs_sha256', lambda: sa.String(length=64)),
    ('json_outputs_kms_key_id', lambda: sa.String(length=255)),
)


def upgrade():
    with op.batch_alter_table('state_versions', schema=None) as batch_op:
        for name, kind in _COLUMNS:
            batch_op.add_column(sa.Column(name, kind(), nullable=True))
        batch_op.create_index('ix_state_versions_workspace_created', ['workspace_id', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('state_versions', schema=None) as batch_op:
        # MySQL refuses to drop an index a foreign key still needs, unless another index serves it:
        # uq_state_versions_workspace_number starts with workspace_id, so this one can go.
        batch_op.drop_index('ix_state_versions_workspace_created')
        for name, _ in reversed(_COLUMNS):
            batch_op.drop_column(name)
