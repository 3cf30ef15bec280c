"""event cursors: one per consumer (subscriber), read by position

Revision ID: e5a7c3d91b20
Revises: aae90fba84f3
Create Date: 2026-12-01 12:00:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'e5a7c3d91b20'
down_revision: Union[str, Sequence[str], None] = 'aae90fba84f3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('kernel_event_cursor',
    sa.Column('consumer', sa.String(length=200), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', name=op.f('pk_kernel_event_cursor'))
    )


def downgrade() -> None:
    op.drop_table('kernel_event_cursor')
