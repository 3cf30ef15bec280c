"""merge kernel subsystems

Revision ID: aae90fba84f3
Revises: 2b010160e693, 96bd67f92abd, c2cc8c7ae271, d4e8a2b6c1f3
Create Date: 2026-11-25 19:23:25.825783
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import nexus.kernel.db.schema
from sqlalchemy import Text


revision: str = 'aae90fba84f3'
down_revision: Union[str, Sequence[str], None] = ('2b010160e693', '96bd67f92abd', 'c2cc8c7ae271', 'd4e8a2b6c1f3')
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
