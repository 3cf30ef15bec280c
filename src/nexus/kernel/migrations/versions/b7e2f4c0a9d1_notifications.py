"""notifications and preferences

Revision ID: b7e2f4c0a9d1
Revises: a1d17c5ea1ed
Create Date: 2026-11-25 18:45:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import nexus.kernel.db.schema

revision: str = 'b7e2f4c0a9d1'
down_revision: Union[str, Sequence[str], None] = 'a1d17c5ea1ed'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('kernel_notification',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('org_id', sa.String(length=26), nullable=False),
    sa.Column('user_id', sa.String(length=26), nullable=False),
    sa.Column('type', sa.String(length=200), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('link', sa.String(length=500), nullable=True),
    sa.Column('data', nexus.kernel.db.schema.JsonType, nullable=True),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kernel_notification'))
    )
    op.create_index('ix_kernel_notification_user', 'kernel_notification', ['org_id', 'user_id', 'read_at', 'id'], unique=False)
    op.create_table('kernel_notification_pref',
    sa.Column('org_id', sa.String(length=26), nullable=False),
    sa.Column('user_id', sa.String(length=26), nullable=False),
    sa.Column('type', sa.String(length=200), nullable=False),
    sa.Column('in_app', sa.Boolean(), nullable=False),
    sa.Column('email', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('org_id', 'user_id', 'type', name=op.f('pk_kernel_notification_pref'))
    )


def downgrade() -> None:
    op.drop_table('kernel_notification_pref')
    op.drop_index('ix_kernel_notification_user', table_name='kernel_notification')
    op.drop_table('kernel_notification')
