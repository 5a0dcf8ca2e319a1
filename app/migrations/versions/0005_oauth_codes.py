"""one-time authorization codes of `terraform login` (OAuth 2.0 authorization code grant with PKCE)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Codes live in the database, not in a worker's memory, so whichever worker receives Terraform's token request can
redeem a code another worker issued. Only the SHA-256 of a code is stored; ``used_at`` is set by one conditional
UPDATE, so a code is redeemed once even when two requests race, and ``token_id`` names the token a reuse revokes.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _timestamp():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'oauth_codes',
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('redirect_uri', sa.String(length=255), nullable=False),
        sa.Column('code_challenge', sa.String(length=128), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('org_id', sa.String(length=40), nullable=False),
        sa.Column('created_at', _timestamp(), nullable=False),
        sa.Column('expires_at', _timestamp(), nullable=False),
        sa.Column('used_at', _timestamp(), nullable=True),
        sa.Column('token_id', sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('code_hash'),
    )
    with op.batch_alter_table('oauth_codes', schema=None) as batch_op:
        batch_op.create_index('ix_oauth_codes_expires_at', ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('oauth_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_oauth_codes_expires_at')
    op.drop_table('oauth_codes')
