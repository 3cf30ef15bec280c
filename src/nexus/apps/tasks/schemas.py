"""What the Tasks API takes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from nexus.kernel.schema_base import Schema

from .rules import normalise_rrule, valid_timezone

Status = Literal["todo", "in_progress", "done"]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _tz(value: str) -> str:
    if not valid_timezone(value):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin or UTC")
    return value


def _rrule(value: str) -> str:
    return normalise_rrule(value)


TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_tz)]
RRule = Annotated[str, StringConstraints(min_length=6, max_length=500), AfterValidator(_rrule)]


class ChecklistItem(Schema):
    text: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    done: bool = False


class ProjectCreate(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    color: Color = "#4f46e5"
    archived: bool = False


class TaskCreate(Schema):
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    description: Annotated[str, StringConstraints(max_length=100_000)] = ""
    project_id: str | None = None
    parent_id: str | None = Field(default=None, description="Makes this a subtask of another task")
    status: Status = "todo"
    priority: int = Field(default=0, ge=0, le=4, description="0 none, 1 low, 2 medium, 3 high, 4 urgent")
    assignee_id: str | None = None
    due_at: datetime | None = Field(default=None, description="A moment (RFC 3339)")
    due_date: date | None = Field(default=None, description="An all-day due date, in due_timezone")
    due_timezone: TimeZone = "UTC"
    recurrence: RRule | None = Field(default=None, description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO")
    labels: list[LabelName] = Field(default_factory=list, max_length=50)
    checklist: list[ChecklistItem] = Field(default_factory=list, max_length=200)
    position: float = 0.0


class CommentCreate(Schema):
    task_id: str
    body: Annotated[str, StringConstraints(min_length=1, max_length=50_000)]


class CommentUpdate(Schema):
    body: Annotated[str, StringConstraints(min_length=1, max_length=50_000)] | None = None


class LabelCreate(Schema):
    name: LabelName
    color: Color = "#64748b"


class AssignInput(Schema):
    assignee_id: str | None = Field(description="A user of the org, or null to unassign")


class MoveInput(Schema):
    status: Status | None = None
    project_id: str | None = None
    position: float | None = None
