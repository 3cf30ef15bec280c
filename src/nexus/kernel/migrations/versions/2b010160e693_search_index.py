"""global search index

Revision ID: 2b010160e693
Revises: c9b8e1298dfb
Create Date: 2026-11-25 19:00:00

kernel_search is declared in kernel/models.py (SearchEntry). The full-text machinery cannot be
declared in SQLAlchemy and is created here, per dialect (migrations/env.py keeps autogenerate
from reporting it):
* SQLite: an FTS5 table over (title, body, scope) with external content (rowid = kernel_search.id,
  an INTEGER PRIMARY KEY, so VACUUM keeps it stable), kept in step by triggers; diacritics
  folded; 2- and 3-letter prefix indexes for type-ahead; a trigger refusing an id outside
  its org's range.
* PostgreSQL: a tsvector column `tsv` (title weighted A, body B, scope lexemes) written by
  kernel/search.py from folded text, with a GIN index.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import nexus.kernel.db.schema

revision: str = '2b010160e693'
down_revision: Union[str, Sequence[str], None] = 'c9b8e1298dfb'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SQLITE_UP = [
    "CREATE VIRTUAL TABLE kernel_search_fts USING fts5(title, body, scope, content='kernel_search',"
    " content_rowid='id', tokenize='unicode61 remove_diacritics 2', prefix='2 3')",
    "CREATE TRIGGER kernel_search_fts_ai AFTER INSERT ON kernel_search BEGIN"
    " INSERT INTO kernel_search_fts (rowid, title, body, scope) VALUES (new.id, new.title, new.body, new.scope); END",
    "CREATE TRIGGER kernel_search_fts_ad AFTER DELETE ON kernel_search BEGIN"
    " INSERT INTO kernel_search_fts (kernel_search_fts, rowid, title, body, scope)"
    " VALUES ('delete', old.id, old.title, old.body, old.scope); END",
    "CREATE TRIGGER kernel_search_fts_au AFTER UPDATE OF id, title, body, scope ON kernel_search"
    " WHEN old.id IS NOT new.id OR old.title IS NOT new.title OR old.body IS NOT new.body"
    " OR old.scope IS NOT new.scope BEGIN"
    " INSERT INTO kernel_search_fts (kernel_search_fts, rowid, title, body, scope)"
    " VALUES ('delete', old.id, old.title, old.body, old.scope);"
    " INSERT INTO kernel_search_fts (rowid, title, body, scope) VALUES (new.id, new.title, new.body, new.scope); END",
    # Tenancy guard: an entry's id must lie in its org's range (kernel/search.py ORG_SHIFT).
    "CREATE TRIGGER kernel_search_org_range BEFORE INSERT ON kernel_search BEGIN"
    " SELECT RAISE(ABORT, 'kernel_search: id outside the org range') WHERE (new.id >> 43) IS NOT"
    " (SELECT code FROM kernel_search_code WHERE kind = 'org' AND name = new.org_id); END",
    "CREATE TRIGGER kernel_search_org_range_u BEFORE UPDATE OF id, org_id ON kernel_search BEGIN"
    " SELECT RAISE(ABORT, 'kernel_search: id outside the org range') WHERE (new.id >> 43) IS NOT"
    " (SELECT code FROM kernel_search_code WHERE kind = 'org' AND name = new.org_id); END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS kernel_search_org_range_u",
    "DROP TRIGGER IF EXISTS kernel_search_org_range",
    "DROP TRIGGER IF EXISTS kernel_search_fts_au",
    "DROP TRIGGER IF EXISTS kernel_search_fts_ad",
    "DROP TRIGGER IF EXISTS kernel_search_fts_ai",
    "DROP TABLE IF EXISTS kernel_search_fts",
]
PG_UP = [
    "ALTER TABLE kernel_search ADD COLUMN tsv tsvector NOT NULL DEFAULT ''::tsvector",
    "CREATE INDEX ix_kernel_search_tsv ON kernel_search USING gin (tsv)",
]
PG_DOWN = [
    "DROP INDEX IF EXISTS ix_kernel_search_tsv",
    "ALTER TABLE kernel_search DROP COLUMN IF EXISTS tsv",
]


def upgrade() -> None:
    op.create_table('kernel_search',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('org_id', sa.String(length=26), nullable=False),
    sa.Column('app', sa.String(length=64), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kernel_search'))
    )
    op.create_index('ux_kernel_search_record', 'kernel_search', ['org_id', 'app', 'resource', 'record_id'],
                    unique=True)
    op.create_index('ix_kernel_search_org_recent', 'kernel_search', ['org_id', 'id'], unique=False)
    op.create_table('kernel_search_code',
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('code', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'name', name=op.f('pk_kernel_search_code'))
    )
    op.create_index('ux_kernel_search_code', 'kernel_search_code', ['kind', 'code'], unique=True)
    dialect = op.get_bind().dialect.name
    for sql in SQLITE_UP if dialect == "sqlite" else PG_UP if dialect == "postgresql" else []:
        op.execute(sql)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for sql in SQLITE_DOWN if dialect == "sqlite" else PG_DOWN if dialect == "postgresql" else []:
        op.execute(sql)
    op.drop_index('ux_kernel_search_code', table_name='kernel_search_code')
    op.drop_table('kernel_search_code')
    op.drop_index('ix_kernel_search_org_recent', table_name='kernel_search')
    op.drop_index('ux_kernel_search_record', table_name='kernel_search')
    op.drop_table('kernel_search')
