"""Task rules: workflow, due dates in time zones, recurrence, subtasks, labels, comment ownership."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from nexus.kernel.errors import Problem, validation
from nexus.kernel.permissions import has_permission
from nexus.kernel.records import TableSpec, UnitOfWork
from nexus.kernel.resources import RecordService

from . import models

LABEL = TableSpec(models.Label)
TASK = TableSpec(models.Task)
MAX_DEPTH = 5


def end_of_day_utc(day: date, tz: str) -> datetime:
    """An all-day task is due until the end of its day where its owner lives."""
    local = datetime.combine(day, time(23, 59, 59, 999999), tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC)


def next_occurrence(rule: str, due: datetime, tz: str) -> datetime | None:
    """The next due moment after `due`, computed in the task's own time zone so that
    'every Monday 09:00' stays 09:00 across daylight-saving changes."""
    zone = ZoneInfo(tz)
    local = due.astimezone(zone).replace(tzinfo=None)
    nxt = rrulestr(rule, dtstart=local).after(local)
    if nxt is None:
        return None
    return nxt.replace(tzinfo=zone).astimezone(UTC)


class TaskService(RecordService):
    # -- create / update rules -------------------------------------------------
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        self._normalise_due(values, values)
        if values.get("recurrence") and values.get("due_at") is None:
            raise validation([{"pointer": "/recurrence", "detail": "a recurring task needs due_at or due_date"}])
        if values.get("parent_id"):
            parent = await uow.require(TASK, values["parent_id"], what="task")
            await self._check_depth(uow, parent, None)
            if values.get("project_id") is None:
                values["project_id"] = parent["project_id"]
        if values.get("status") == "done":
            values["completed_at"] = uow.now
            values["completed_by"] = uow.ctx.user_id
        await self._ensure_labels(uow, values.get("labels") or [])

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        merged = {**before, **changes}
        if {"due_at", "due_date", "due_timezone"} & set(changes):
            if "due_at" in changes and "due_date" not in changes:
                merged["due_date"] = None
            if "due_date" in changes and "due_at" not in changes:
                merged["due_at"] = None
            self._normalise_due(merged, changes)
        rec = changes.get("recurrence", before.get("recurrence"))
        due = changes.get("due_at", before.get("due_at"))
        if rec and due is None:
            raise validation([{"pointer": "/recurrence", "detail": "a recurring task needs due_at or due_date"}])
        if changes.get("parent_id"):
            if changes["parent_id"] == before["id"]:
                raise validation([{"pointer": "/parent_id", "detail": "a task cannot be its own parent"}])
            parent = await uow.require(TASK, changes["parent_id"], what="task")
            await self._check_depth(uow, parent, before["id"])
        if "status" in changes and changes["status"] != before["status"]:
            if changes["status"] == "done":
                changes["completed_at"] = uow.now
                changes["completed_by"] = uow.ctx.user_id
            elif before["status"] == "done":
                changes["completed_at"] = None
                changes["completed_by"] = None
        if "labels" in changes:
            await self._ensure_labels(uow, changes["labels"] or [])

    def _normalise_due(self, values: dict[str, Any], out: dict[str, Any]) -> None:
        tz = values.get("due_timezone") or "UTC"
        due_date = values.get("due_date")
        due_at = values.get("due_at")
        if due_date is not None and due_at is not None and "due_at" in out and "due_date" in out:
            raise validation([{"pointer": "/due_date", "detail": "give due_at or due_date, not both"}])
        if due_date is not None:
            if isinstance(due_date, str):
                due_date = date.fromisoformat(due_date)
            out["due_date"] = due_date
            out["due_at"] = end_of_day_utc(due_date, tz)
            out["all_day"] = True
        elif due_at is not None:
            if isinstance(due_at, str):
                from nexus.kernel.jsonutil import parse_dt

                due_at = parse_dt(due_at)
            elif due_at.tzinfo is None:
                due_at = due_at.replace(tzinfo=ZoneInfo(tz))  # a local time in the task's zone
            out["due_at"] = due_at.astimezone(UTC)
            out["due_date"] = None
            out["all_day"] = False
        else:
            out["due_at"] = None
            out["due_date"] = None
            out["all_day"] = False
        out["due_timezone"] = tz

    async def _check_depth(self, uow: UnitOfWork, parent: dict[str, Any], moving_id: str | None) -> None:
        depth = 1
        node: dict[str, Any] | None = parent
        while node is not None and node.get("parent_id"):
            if node["parent_id"] == moving_id or node["id"] == moving_id:
                raise validation([{"pointer": "/parent_id", "detail": "that would make a cycle of subtasks"}])
            depth += 1
            if depth >= MAX_DEPTH:
                raise validation([{"pointer": "/parent_id", "detail": f"subtasks nest at most {MAX_DEPTH} deep"}])
            node = await uow.get(TASK, node["parent_id"])
        if node is not None and node["id"] == moving_id:
            raise validation([{"pointer": "/parent_id", "detail": "that would make a cycle of subtasks"}])

    async def _ensure_labels(self, uow: UnitOfWork, names: list[str]) -> None:
        """Todoist-style: using a label creates it."""
        if not names:
            return
        have = {r["name"] for r in await uow.find(LABEL, {})}
        for name in dict.fromkeys(names):
            if name not in have:
                rec = await uow.insert(LABEL, {"name": name})
                uow.audit("tasks", "labels", rec["id"], "created", None, rec)
                uow.emit("nexus.tasks.label.created", rec["id"], {"id": rec["id"], "record": rec, "previous": None})

    # -- domain actions -----------------------------------------------------------
    async def complete(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] == "done":
            return record
        changes: dict[str, Any] = {"status": "done", "completed_at": uow.now, "completed_by": uow.ctx.user_id}
        if record.get("recurrence") and record.get("due_at") is not None:
            nxt = await self._spawn_next(uow, record)
            if nxt is not None:
                changes["next_occurrence_id"] = nxt["id"]
        for sub in await uow.find(TASK, {"parent_id": record["id"]}):
            if sub["status"] != "done":
                await self.complete(uow, sub, None)
        return await self.change(uow, record, changes, "completed")

    async def reopen(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] != "done":
            raise Problem(409, "Only a done task can be reopened.")
        return await self.change(uow, record, {"status": "todo", "completed_at": None, "completed_by": None}, "reopened")

    async def start(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] == "in_progress":
            return record
        if record["status"] == "done":
            raise Problem(409, "Reopen the task before starting it again.")
        return await self.change(uow, record, {"status": "in_progress"}, "started")

    async def assign(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        await self.check_references(uow, {"assignee_id": body.assignee_id})
        if record["assignee_id"] == body.assignee_id:
            return record
        return await self.change(uow, record, {"assignee_id": body.assignee_id}, "assigned")

    async def move(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        """Kanban: a new column (status), project or position in one step."""
        changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
        await self.check_references(uow, changes)
        await self.before_update(uow, record, changes)
        changes = {k: v for k, v in changes.items() if record.get(k) != v}
        if not changes:
            return record
        return await self.change(uow, record, changes, "moved")

    async def _spawn_next(self, uow: UnitOfWork, record: dict[str, Any]) -> dict[str, Any] | None:
        due = uow.db.read_ts(record["due_at"])
        assert due is not None
        nxt = next_occurrence(record["recurrence"], due, record["due_timezone"] or "UTC")
        if nxt is None:
            return None
        values = {k: record[k] for k in ("project_id", "parent_id", "title", "description", "priority", "assignee_id",
                                         "due_timezone", "all_day", "recurrence", "labels", "position")}
        values["checklist"] = [{**i, "done": False} for i in record.get("checklist") or []]
        values["status"] = "todo"
        values["due_at"] = nxt
        values["due_date"] = nxt.astimezone(ZoneInfo(record["due_timezone"] or "UTC")).date() if record["all_day"] else None
        values["recurrence_of"] = record.get("recurrence_of") or record["id"]
        new = await uow.insert(TASK, values)
        self.record_change(uow, "created", None, new)
        return new


class CommentService(RecordService):
    """Record rule: a comment is edited or deleted by its author, or by someone who may moderate."""

    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        await uow.require(TASK, values["task_id"], what="task")

    def _own(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        p = uow.ctx.principal
        if record["created_by"] != p.user_id and not has_permission(p, "tasks.comments.moderate"):
            raise Problem(403, "Only the author can change this comment.")

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        self._own(uow, before)

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        self._own(uow, record)


class LabelService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        if await uow.find(LABEL, {"name": values["name"]}):
            raise validation([{"pointer": "/name", "detail": "a label with this name exists"}])


class ProjectService(RecordService):
    async def archive(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        return record if record["archived"] else await self.change(uow, record, {"archived": True}, "archived")

    async def unarchive(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        return record if not record["archived"] else await self.change(uow, record, {"archived": False}, "unarchived")


