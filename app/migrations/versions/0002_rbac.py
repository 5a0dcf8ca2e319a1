"""roles, permissions and role assignments (RBAC); workspace engine setting

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Existing organizations get the built-in roles ``admin`` (every action) and ``default`` (read), and every existing
member becomes ``admin``: before this revision a member could do everything in their organization, and an upgrade
must not lock anyone out.
"""
import secrets
import string
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_ALPHABET = string.ascii_letters + string.digits


def _timestamp():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def _name(length):
    return sa.String(length=length).with_variant(mysql.VARCHAR(length=length, collation='utf8mb4_bin'),
                                                 'mysql', 'mariadb')


def _big_id():
    return sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _new_id(prefix):
    return f"{prefix}-" + "".join(secrets.choice(_ALPHABET) for _ in range(16))


def upgrade():
    op.create_table('roles',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('name', _name(90), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('created_at', _timestamp(), nullable=False),
    sa.Column('updated_at', _timestamp(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_roles_org_id_organizations'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roles')),
    sa.UniqueConstraint('org_id', 'name', name='uq_roles_org_name')
    )
    op.create_table('permissions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('name', _name(90), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('created_at', _timestamp(), nullable=False),
    sa.Column('updated_at', _timestamp(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_permissions_org_id_organizations'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_permissions')),
    sa.UniqueConstraint('org_id', 'name', name='uq_permissions_org_name')
    )
    op.create_table('role_permissions',
    sa.Column('id', _big_id(), autoincrement=True, nullable=False),
    sa.Column('role_id', sa.String(length=40), nullable=False),
    sa.Column('permission_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', _timestamp(), nullable=False),
    sa.ForeignKeyConstraint(['permission_id'], ['permissions.id'],
                            name=op.f('fk_role_permissions_permission_id_permissions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_role_permissions_role_id_roles'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_permissions')),
    sa.UniqueConstraint('role_id', 'permission_id', name='uq_role_permissions_role_permission')
    )
    with op.batch_alter_table('role_permissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_permissions_permission_id'), ['permission_id'], unique=False)

    op.create_table('role_assignments',
    sa.Column('id', _big_id(), autoincrement=True, nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('role_id', sa.String(length=40), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('created_at', _timestamp(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_role_assignments_org_id_organizations'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_role_assignments_role_id_roles'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_role_assignments_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_assignments')),
    sa.UniqueConstraint('user_id', 'role_id', name='uq_role_assignments_user_role')
    )
    with op.batch_alter_table('role_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_role_assignments_org_user', ['org_id', 'user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_role_assignments_role_id'), ['role_id'], unique=False)

    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('engine', sa.String(length=20), server_default='terraform', nullable=False))

    _backfill_builtin_roles()


def _backfill_builtin_roles():
    """Built-in roles for every existing organization; every existing member becomes admin (no lock-out)."""
    connection = op.get_bind()
    organizations = sa.table('organizations', sa.column('id', sa.String))
    memberships = sa.table('memberships', sa.column('org_id', sa.String), sa.column('user_id', sa.String))
    roles = sa.table('roles', sa.column('id', sa.String), sa.column('org_id', sa.String),
                     sa.column('name', sa.String), sa.column('description', sa.String),
                     sa.column('builtin', sa.Boolean), sa.column('created_by', sa.String),
                     sa.column('created_at', sa.DateTime), sa.column('updated_at', sa.DateTime))
    permissions = sa.table('permissions', sa.column('id', sa.String), sa.column('org_id', sa.String),
                           sa.column('name', sa.String), sa.column('description', sa.String),
                           sa.column('rules', sa.JSON), sa.column('builtin', sa.Boolean),
                           sa.column('created_by', sa.String), sa.column('created_at', sa.DateTime),
                           sa.column('updated_at', sa.DateTime))
    links = sa.table('role_permissions', sa.column('role_id', sa.String), sa.column('permission_id', sa.String),
                     sa.column('created_at', sa.DateTime))
    assignments = sa.table('role_assignments', sa.column('org_id', sa.String), sa.column('user_id', sa.String),
                           sa.column('role_id', sa.String), sa.column('created_by', sa.String),
                           sa.column('created_at', sa.DateTime))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    # Kept literally here (not imported from app code) so this revision means the same thing forever.
    builtin = (
        ('admin', 'Full access: every action on every workspace, and role management',
         'admin', 'Every action on every workspace', [{'actions': ['*'], 'resources': ['*'], 'effect': 'allow'}]),
        ('default', 'Read access to every workspace',
         'read', 'Read every workspace', [{'actions': ['unit.read'], 'resources': ['*'], 'effect': 'allow'}]),
    )
    for (org_id,) in connection.execute(sa.select(organizations.c.id)).all():
        admin_role_id = None
        for role_name, role_description, permission_name, permission_description, rules in builtin:
            role_id, permission_id = _new_id('role'), _new_id('perm')
            connection.execute(roles.insert().values(
                id=role_id, org_id=org_id, name=role_name, description=role_description, builtin=True,
                created_by='migration:0002', created_at=now, updated_at=now))
            connection.execute(permissions.insert().values(
                id=permission_id, org_id=org_id, name=permission_name, description=permission_description,
                rules=rules, builtin=True, created_by='migration:0002', created_at=now, updated_at=now))
            connection.execute(links.insert().values(role_id=role_id, permission_id=permission_id, created_at=now))
            if role_name == 'admin':
                admin_role_id = role_id
        members = connection.execute(sa.select(memberships.c.user_id).where(memberships.c.org_id == org_id)).all()
        for (user_id,) in members:
            connection.execute(assignments.insert().values(
                org_id=org_id, user_id=user_id, role_id=admin_role_id, created_by='migration:0002', created_at=now))


def downgrade():
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('engine')
    # Indexes go with their tables (MySQL refuses to drop an index a foreign key still needs).
    op.drop_table('role_assignments')
    op.drop_table('role_permissions')
    op.drop_table('permissions')
    op.drop_table('roles')
