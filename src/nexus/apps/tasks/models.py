"""Tasks tables."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Float, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from nexus.kernel.db.schema import Base, IdType, JsonType, Record, Timestamp


class Project(Record, Base):
    __tablename__ = "tasks_project"
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    color: Mapped[str] = mapped_column(String(16), default="#4f46e5")
    archived: Mapped[bool] = mapped_column(Boolean, default=False)


class Task(Record, Base):
    __tablename__ = "tasks_task"
    project_id: Mapped[str | None] = mapped_column(IdType)
    parent_id: Mapped[str | None] = mapped_column(IdType)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="todo")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    assignee_id: Mapped[str | None] = mapped_column(IdType)
    due_at: Mapped[datetime | None] = mapped_column(Timestamp)
    due_date: Mapped[date | None] = mapped_column(Date)
    due_timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    recurrence: Mapped[str | None] = mapped_column(String(500))
    labels: Mapped[list[str]] = mapped_column(JsonType, default=list)
    checklist: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    position: Mapped[float] = mapped_column(Float, default=0.0)
    completed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    completed_by: Mapped[str | None] = mapped_column(IdType)
    recurrence_of: Mapped[str | None] = mapped_column(IdType)
    next_occurrence_id: Mapped[str | None] = mapped_column(IdType)

    __table_args__ = (
        Index("ix_tasks_task_org_created", "org_id", "created_at"),
        Index("ix_tasks_task_assignee", "org_id", "assignee_id", "status", "due_at", "id"),
        Index("ix_tasks_task_project", "org_id", "project_id", "status", "position"),
        Index("ix_tasks_task_parent", "org_id", "parent_id"),
        Index("ix_tasks_task_due", "org_id", "due_at"),
    )


class Comment(Record, Base):
    __tablename__ = "tasks_comment"
    task_id: Mapped[str] = mapped_column(IdType)
    body: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_tasks_comment_task", "org_id", "task_id", "created_at"),)


class Label(Record, Base):
    __tablename__ = "tasks_label"
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str] = mapped_column(String(16), default="#64748b")

    # Unique among live labels only: a deleted label's name can be used again.
    __table_args__ = (
        Index("uq_tasks_label_org_name", "org_id", "name", unique=True,
              sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL")),
    )
