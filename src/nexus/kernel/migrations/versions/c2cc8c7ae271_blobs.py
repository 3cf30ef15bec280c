"""blobs: kernel_blob (content by sha256) and kernel_blob_ref (an org's use of it)

Revision ID: c2cc8c7ae271
Revises: c9b8e1298dfb
Create Date: 2026-11-25 18:45:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = 'c2cc8c7ae271'
down_revision: Union[str, Sequence[str], None] = 'c9b8e1298dfb'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('kernel_blob',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('touched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_kernel_blob'))
    )
    with op.batch_alter_table('kernel_blob', schema=None) as batch_op:
        batch_op.create_index('ix_kernel_blob_touched', ['touched_at'], unique=False)

    op.create_table('kernel_blob_ref',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('org_id', sa.String(length=26), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('app', sa.String(length=64), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['sha256'], ['kernel_blob.sha256'],
                            name=op.f('fk_kernel_blob_ref_sha256_kernel_blob')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kernel_blob_ref'))
    )
    with op.batch_alter_table('kernel_blob_ref', schema=None) as batch_op:
        batch_op.create_index('ix_kernel_blob_ref_owner', ['org_id', 'app', 'resource', 'record_id'], unique=False)
        batch_op.create_index('ix_kernel_blob_ref_sha256', ['sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('kernel_blob_ref', schema=None) as batch_op:
        batch_op.drop_index('ix_kernel_blob_ref_sha256')
        batch_op.drop_index('ix_kernel_blob_ref_owner')

    op.drop_table('kernel_blob_ref')
    with op.batch_alter_table('kernel_blob', schema=None) as batch_op:
        batch_op.drop_index('ix_kernel_blob_touched')

    op.drop_table('kernel_blob')
