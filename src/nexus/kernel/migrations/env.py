"""Alembic environment shared by every app's migration branch."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from nexus.kernel import models as _kernel_models
from nexus.kernel.apps import import_all_models
from nexus.kernel.db.schema import metadata

import_all_models()
config = context.config
only_app = os.environ.get("NEXUS_MIGRATION_APP")


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    if type_ == "table" and name == "alembic_version":
        return False
    # search: the FTS5 table (and its shadow tables) and the tsvector column with its GIN
    # index exist only in the migration (kernel/search.py).
    if reflected and compare_to is None and (
            str(name).startswith("kernel_search_fts") or name == "ix_kernel_search_tsv"
            or (type_ == "column" and name == "tsv" and obj.table.name == "kernel_search")):
        return False
    if only_app and type_ == "table":
        return bool(name.startswith(only_app + "_"))
    return True


def run() -> None:
    engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            include_object=include_object,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
