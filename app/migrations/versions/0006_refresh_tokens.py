"""refresh tokens of /v1/auth (id-token exchange, refresh rotation with reuse detection)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Only the SHA-256 of a refresh token is stored. ``used_at`` is set by one conditional UPDATE (single use under
races); ``family_id`` groups the tokens of one exchange so that a replay revokes all of them and the access
tokens (``access_token_id``, rows of api_tokens) they bought.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _timestamp():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'refresh_tokens',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('family_id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('org_id', sa.String(length=40), nullable=False),
        sa.Column('access_token_id', sa.String(length=40), nullable=False),
        sa.Column('created_at', _timestamp(), nullable=False),
        sa.Column('expires_at', _timestamp(), nullable=False),
        sa.Column('used_at', _timestamp(), nullable=True),
        sa.Column('revoked_at', _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_refresh_tokens_family_id', ['family_id'], unique=False)
        batch_op.create_index('ix_refresh_tokens_expires_at', ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_refresh_tokens_expires_at')
        batch_op.drop_index('ix_refresh_tokens_family_id')
    op.drop_table('refresh_tokens')
