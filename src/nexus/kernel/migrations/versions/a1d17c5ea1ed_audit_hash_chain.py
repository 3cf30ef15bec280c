"""audit hash chain: seq and hash on kernel_audit

Revision ID: a1d17c5ea1ed
Revises: c9b8e1298dfb
Create Date: 2026-11-25 18:40:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'a1d17c5ea1ed'
down_revision: Union[str, Sequence[str], None] = 'c9b8e1298dfb'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('kernel_audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kernel_audit_head'))
    )
    with op.batch_alter_table('kernel_audit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_kernel_audit_unsealed', ['seq', 'id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_kernel_audit_seq'), ['seq'])


def downgrade() -> None:
    with op.batch_alter_table('kernel_audit', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_kernel_audit_seq'), type_='unique')
        batch_op.drop_index('ix_kernel_audit_unsealed')
        batch_op.drop_column('hash')
        batch_op.drop_column('seq')
    op.drop_table('kernel_audit_head')
