"""The schema side of records: SQLAlchemy declarative models, read by Alembic.

Every app's models subclass `Base` and mix in `Record` for the columns every
record has (DESIGN.md §3). Table names are prefixed with the app's name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, MetaData, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

Timestamp = DateTime(timezone=True)
JsonType = JSON().with_variant(JSONB(), "postgresql")
IdType = String(26)


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map: dict[Any, Any] = {datetime: Timestamp}


class Record:
    """Columns every record has: id, tenancy, who/when, optimistic version, soft delete."""

    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, nullable=False)
    created_by: Mapped[str | None] = mapped_column(IdType, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(IdType, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (Index(f"ix_{name}_org_created", "org_id", "created_at"),)


RECORD_COLUMNS = ("id", "org_id", "created_at", "created_by", "updated_at", "updated_by", "version", "deleted_at")
