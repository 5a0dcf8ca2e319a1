"""workspace tags as rows: a key with an optional value (TFE tag names and key/value tag bindings)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

The JSON list ``workspaces.tag_names`` becomes one ``workspace_tags`` row per tag with an empty value, so tags can
be searched with an index (``search[tags]``, ``filter[tagged]``) and key/value bindings live beside plain tags.
The downgrade writes the keys back into ``tag_names`` (values are lost there: the old schema had none).
"""
import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _name(length):
    return sa.String(length=length).with_variant(mysql.VARCHAR(length=length, collation='utf8mb4_bin'),
                                                 'mysql', 'mariadb')


def _as_list(raw):
    if raw is None:
        return []
    value = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    return [tag for tag in value if isinstance(tag, str)] if isinstance(value, list) else []


def upgrade():
    tags = op.create_table(
        'workspace_tags',
        sa.Column('workspace_id', sa.String(length=40), nullable=False),
        sa.Column('key', _name(255), nullable=False),
        sa.Column('value', _name(255), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('workspace_id', 'key'),
    )
    with op.batch_alter_table('workspace_tags', schema=None) as batch_op:
        batch_op.create_index('ix_workspace_tags_key_value', ['key', 'value'], unique=False)
    connection = op.get_bind()
    rows = connection.execute(sa.text('SELECT id, tag_names FROM workspaces')).fetchall()
    copied = [
        {'workspace_id': workspace_id, 'key': key, 'value': ''}
        for workspace_id, raw in rows
        for key in dict.fromkeys(_as_list(raw))
    ]
    if copied:
        op.bulk_insert(tags, copied)
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('tag_names')


def downgrade():
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tag_names', sa.JSON(), nullable=True))
    connection = op.get_bind()
    keys = {}
    tags = sa.table('workspace_tags', sa.column('workspace_id'), sa.column('key'))
    for workspace_id, key in connection.execute(sa.select(tags.c.workspace_id, tags.c.key).order_by(tags.c.key)):
        keys.setdefault(workspace_id, []).append(key)
    for workspace_id, names in keys.items():
        connection.execute(
            sa.text('UPDATE workspaces SET tag_names = :names WHERE id = :id'),
            {'names': json.dumps(names), 'id': workspace_id},
        )
    with op.batch_alter_table('workspace_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_workspace_tags_key_value')
    op.drop_table('workspace_tags')
