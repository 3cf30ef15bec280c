"""webhook subscriptions and delivery log

Revision ID: d4e8a2b6c1f3
Revises: b7e2f4c0a9d1
Create Date: 2026-11-25 18:55:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import nexus.kernel.db.schema

revision: str = 'd4e8a2b6c1f3'
down_revision: Union[str, Sequence[str], None] = 'b7e2f4c0a9d1'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('kernel_webhook',
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('event_types', nexus.kernel.db.schema.JsonType, nullable=False),
    sa.Column('secret_enc', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=500), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('org_id', sa.String(length=26), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=26), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=26), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kernel_webhook'))
    )
    op.create_index('ix_kernel_webhook_org_created', 'kernel_webhook', ['org_id', 'created_at'], unique=False)
    op.create_table('kernel_webhook_delivery',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('org_id', sa.String(length=26), nullable=False),
    sa.Column('webhook_id', sa.String(length=26), nullable=False),
    sa.Column('event_id', sa.String(length=26), nullable=False),
    sa.Column('event_type', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('response_excerpt', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('history', nexus.kernel.db.schema.JsonType, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kernel_webhook_delivery'))
    )
    op.create_index('ix_kernel_webhook_delivery_due', 'kernel_webhook_delivery', ['status', 'next_attempt_at'], unique=False)
    op.create_index('ix_kernel_webhook_delivery_hook', 'kernel_webhook_delivery', ['org_id', 'webhook_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_kernel_webhook_delivery_hook', table_name='kernel_webhook_delivery')
    op.drop_index('ix_kernel_webhook_delivery_due', table_name='kernel_webhook_delivery')
    op.drop_table('kernel_webhook_delivery')
    op.drop_index('ix_kernel_webhook_org_created', table_name='kernel_webhook')
    op.drop_table('kernel_webhook')
