"""jobs and schedules: kernel_job (durable queue) and kernel_schedule (cron)

Revision ID: 96bd67f92abd
Revises: c9b8e1298dfb
Create Date: 2026-11-25 18:29:31.974828
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = '96bd67f92abd'
down_revision: Union[str, Sequence[str], None] = 'c9b8e1298dfb'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
# Partial indexes: each holds a job's row only while it matters there.
_QUEUED = "status = 'queued'"
_RUNNING = "status = 'running'"
_FINISHED = "finished_at IS NOT NULL"
_UNIQUE = "status IN ('queued', 'running') AND unique_key IS NOT NULL"


def upgrade() -> None:
    op.create_table('kernel_job',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('org_id', sa.String(length=26), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('payload', _JSON, nullable=False),
    sa.Column('priority', sa.Integer(), server_default='0', nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_by', sa.String(length=100), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unique_key', sa.String(length=255), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kernel_job'))
    )
    op.create_index('ix_kernel_job_claim', 'kernel_job', [sa.literal_column('priority DESC'), 'run_at', 'id'],
                    unique=False, sqlite_where=sa.text(_QUEUED), postgresql_where=sa.text(_QUEUED))
    op.create_index('ix_kernel_job_finished', 'kernel_job', ['finished_at'], unique=False,
                    sqlite_where=sa.text(_FINISHED), postgresql_where=sa.text(_FINISHED))
    op.create_index('ix_kernel_job_lock', 'kernel_job', ['locked_until'], unique=False,
                    sqlite_where=sa.text(_RUNNING), postgresql_where=sa.text(_RUNNING))
    op.create_index('ix_kernel_job_org', 'kernel_job', ['org_id', 'created_at'], unique=False)
    op.create_index('uq_kernel_job_unique', 'kernel_job', ['name', 'unique_key'], unique=True,
                    sqlite_where=sa.text(_UNIQUE), postgresql_where=sa.text(_UNIQUE))
    op.create_table('kernel_schedule',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('org_id', sa.String(length=26), nullable=True),
    sa.Column('cron', sa.String(length=100), nullable=False),
    sa.Column('job_name', sa.String(length=200), nullable=False),
    sa.Column('payload', _JSON, nullable=False),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_kernel_schedule'))
    )


def downgrade() -> None:
    op.drop_table('kernel_schedule')
    op.drop_index('uq_kernel_job_unique', table_name='kernel_job')
    op.drop_index('ix_kernel_job_org', table_name='kernel_job')
    op.drop_index('ix_kernel_job_lock', table_name='kernel_job')
    op.drop_index('ix_kernel_job_finished', table_name='kernel_job')
    op.drop_index('ix_kernel_job_claim', table_name='kernel_job')
    op.drop_table('kernel_job')
