"""token kinds, agent pools, and the persisted signing keys of /oidc/jwks.json

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

``api_tokens.kind`` tells a person's token (``user``) from an organization-wide one made by an operator
(``service``), the TFE API's single organization token (``organization``) and an agent's (``agent``, optionally of
an agent pool). Existing rows become ``user`` or ``service`` by whether they have a user. ``signing_keys`` holds the
keys that sign the access tokens of /v1/auth: the private key encrypted by the KMS driver, the public JWK published;
``slot`` is 1 for the one key that signs now (unique, so concurrent first use creates one key) and NULL once
retired (still published until pruned).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _timestamp():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def _name(length):
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation='utf8mb4_bin'), 'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'agent_pools',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('org_id', sa.String(length=40), nullable=False),
        sa.Column('name', _name(90), nullable=False),
        sa.Column('created_at', _timestamp(), nullable=False),
        sa.Column('created_by', sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name='fk_agent_pools_org_id_organizations',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_agent_pools'),
        sa.UniqueConstraint('org_id', 'name', name='uq_agent_pools_org_id'),
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=False, server_default='user'))
        batch_op.add_column(sa.Column('agent_pool_id', sa.String(length=40), nullable=True))
        batch_op.create_foreign_key('fk_api_tokens_agent_pool_id_agent_pools', 'agent_pools', ['agent_pool_id'],
                                    ['id'], ondelete='CASCADE')
    op.execute("UPDATE api_tokens SET kind = 'service' WHERE user_id IS NULL")
    op.create_table(
        'signing_keys',
        sa.Column('kid', sa.String(length=64), nullable=False),
        sa.Column('algorithm', sa.String(length=10), nullable=False),
        sa.Column('public_jwk', sa.JSON(), nullable=False),
        sa.Column('private_key', sa.LargeBinary(), nullable=False),
        sa.Column('kms_key_id', sa.String(length=255), nullable=False),
        sa.Column('slot', sa.Integer(), nullable=True),
        sa.Column('created_at', _timestamp(), nullable=False),
        sa.Column('retired_at', _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint('kid', name='pk_signing_keys'),
        sa.UniqueConstraint('slot', name='uq_signing_keys_slot'),
    )


def downgrade():
    op.drop_table('signing_keys')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_api_tokens_agent_pool_id_agent_pools', type_='foreignkey')
        batch_op.drop_column('agent_pool_id')
        batch_op.drop_column('kind')
    op.drop_table('agent_pools')
