"""Task rules: workflow, due dates in time zones, recurrence, subtasks, labels, comment ownership."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from nexus.kernel.errors import Problem, validation
from nexus.kernel.ids import new_id
from nexus.kernel.permissions import has_permission
from nexus.kernel.records import TableSpec, UnitOfWork
from nexus.kernel.resources import RecordService

from . import models
from .rules import (
    MAX_YEAR,
    MIN_YEAR,
    end_of_day_utc,
    next_occurrence,
    next_occurrence_and_rule,
    rule_can_recur,
)

__all__ = ["MAX_DEPTH", "CommentService", "LabelService", "ProjectService", "TaskService", "end_of_day_utc",
           "next_occurrence"]

LABEL = TableSpec(models.Label)
TASK = TableSpec(models.Task)
PROJECT = TableSpec(models.Project)
MAX_DEPTH = 5  # a top-level task and four levels of subtasks


def _record_task_change(uow: UnitOfWork, verb: str, before: dict[str, Any] | None,
                        after: dict[str, Any] | None) -> None:
    """Audit entry and event for a task changed as a side effect of another change."""
    rec = after or before or {}
    uow.audit("tasks", "tasks", rec.get("id"), verb, before, after)
    uow.emit(f"nexus.tasks.task.{verb}", rec.get("id"), {"id": rec.get("id"), "record": after, "previous": before})


async def _children(uow: UnitOfWork, parent_ids: list[str], *, deleted_at: Any = None) -> list[dict[str, Any]]:
    """Direct subtasks of any of `parent_ids` (live ones, or those deleted at exactly `deleted_at`)."""
    out: list[dict[str, Any]] = []
    for i in range(0, len(parent_ids), 200):
        chunk = parent_ids[i:i + 200]
        sql = (f"SELECT {TASK.select_list} FROM {TASK.name} WHERE org_id = ? "
               f"AND parent_id IN ({','.join('?' * len(chunk))})")
        args: list[Any] = [uow.ctx.org_id, *chunk]
        if deleted_at is None:
            sql += " AND deleted_at IS NULL"
        else:
            sql += " AND deleted_at = ?"
            args.append(TASK.encode(uow.db, "deleted_at", uow.db.read_ts(deleted_at)))
        rows = await uow.conn.fetch(sql + " ORDER BY id", args)
        out += [TASK.to_dict(uow.dialect, r) for r in rows]
    return out


async def _descendants(uow: UnitOfWork, task_id: str, *, deleted_at: Any = None) -> list[list[dict[str, Any]]]:
    """Subtasks level by level (at most MAX_DEPTH levels are ever stored)."""
    levels: list[list[dict[str, Any]]] = []
    frontier = [task_id]
    seen = {task_id}
    for _ in range(MAX_DEPTH + 1):
        level = [t for t in await _children(uow, frontier, deleted_at=deleted_at) if t["id"] not in seen]
        if not level:
            break
        levels.append(level)
        seen.update(t["id"] for t in level)
        frontier = [t["id"] for t in level]
    return levels


class TaskService(RecordService):
    # -- create / update rules -------------------------------------------------
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        self._normalise_due(values, values)
        values["labels"] = list(dict.fromkeys(values.get("labels") or []))
        await self._check_recurrence(values)
        if values.get("parent_id"):
            parent = await self._check_parent(uow, values["parent_id"], None)
            if values.get("project_id") is None:
                values["project_id"] = parent["project_id"]
            elif values["project_id"] != parent["project_id"]:
                raise validation([{"pointer": "/project_id", "detail": "a subtask lives in its parent's project"}])
        await self._check_project(uow, values.get("project_id"))
        if values.get("status") == "done":
            values["completed_at"] = uow.now
            values["completed_by"] = uow.ctx.user_id
        await self._ensure_labels(uow, values["labels"])

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        merged = {**before, **changes}
        if {"due_at", "due_date", "due_timezone"} & set(changes):
            if "due_at" in changes and "due_date" not in changes:
                merged["due_date"] = None
            if "due_date" in changes and "due_at" not in changes:
                merged["due_at"] = None
            self._normalise_due(merged, changes)
            merged.update(changes)
        if {"recurrence", "due_at", "due_date", "due_timezone"} & set(changes):
            await self._check_recurrence(merged)
        if "labels" in changes:
            changes["labels"] = list(dict.fromkeys(changes["labels"] or []))
        if changes.get("checklist") is not None:
            # PATCH bodies are dumped with exclude_unset, which drops defaults of nested items too.
            changes["checklist"] = [{"text": i["text"], "done": bool(i.get("done", False))} for i in changes["checklist"]]
        if changes.get("parent_id") and changes["parent_id"] != before.get("parent_id"):
            if changes["parent_id"] == before["id"]:
                raise validation([{"pointer": "/parent_id", "detail": "a task cannot be its own parent"}])
            parent = await self._check_parent(uow, changes["parent_id"], before["id"])
            if "project_id" not in changes:
                changes["project_id"] = merged["project_id"] = parent["project_id"]
            elif changes["project_id"] != parent["project_id"]:
                raise validation([{"pointer": "/project_id", "detail": "a subtask lives in its parent's project"}])
        elif merged.get("parent_id") and "project_id" in changes and changes["project_id"] != before["project_id"]:
            current = await uow.get(TASK, merged["parent_id"])
            if current is not None and current["project_id"] != changes["project_id"]:
                raise validation([{"pointer": "/project_id",
                                   "detail": "a subtask lives in its parent's project; clear parent_id to move it"}])
        if "project_id" in changes and changes["project_id"] != before["project_id"]:
            await self._check_project(uow, changes["project_id"])
            await self._move_subtasks(uow, before["id"], changes["project_id"])
        if "status" in changes and changes["status"] != before["status"]:
            if changes["status"] == "done":
                changes.update(await self._completion(uow, merged))
            elif before["status"] == "done":
                changes["completed_at"] = None
                changes["completed_by"] = None
                await self._reopen_ancestors(uow, before)
        if "labels" in changes:
            await self._ensure_labels(uow, changes["labels"])

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        """Deleting a task deletes its subtasks with it (restoring it brings them back)."""
        for level in await _descendants(uow, record["id"]):
            for sub in level:
                before, after = await uow.update(TASK, sub["id"], {"deleted_at": uow.now})
                self.record_change(uow, "deleted", before, after)

    async def restore(self, uow: UnitOfWork, record_id: str) -> dict[str, Any]:
        record = await uow.require(TASK, record_id, include_deleted=True, what="task")
        deleted_at = record["deleted_at"]
        if deleted_at is not None and record.get("parent_id") and not await uow.exists(TASK, record["parent_id"]):
            raise Problem(409, "The parent task is deleted; restore it first.")
        after = await super().restore(uow, record_id)
        for level in await _descendants(uow, record_id, deleted_at=deleted_at):
            for sub in level:
                before, restored = await uow.update(TASK, sub["id"], {"deleted_at": None}, include_deleted=True)
                self.record_change(uow, "restored", before, restored)
        return after

    def _normalise_due(self, values: dict[str, Any], out: dict[str, Any]) -> None:
        """One of due_at (a moment; a naive one is wall time in due_timezone) or due_date (all day,
        due at the end of that day in due_timezone) → due_at in UTC, due_date, all_day."""
        tz = values.get("due_timezone") or "UTC"
        due_date = values.get("due_date")
        due_at = values.get("due_at")
        if due_date is not None and due_at is not None and "due_at" in out and "due_date" in out:
            if not _same_all_day(due_date, due_at, tz):
                raise validation([{"pointer": "/due_date", "detail": "give due_at or due_date, not both"}])
            due_at = None  # an export of an all-day task carries both; the date is what counts
        try:
            if due_date is not None:
                if isinstance(due_date, str):
                    due_date = date.fromisoformat(due_date)
                if not MIN_YEAR <= due_date.year <= MAX_YEAR:
                    raise validation([{"pointer": "/due_date",
                                       "detail": f"must be between the years {MIN_YEAR} and {MAX_YEAR}"}])
                out["due_date"] = due_date
                out["due_at"] = end_of_day_utc(due_date, tz)
                out["all_day"] = True
            elif due_at is not None:
                if isinstance(due_at, str):
                    from nexus.kernel.jsonutil import parse_dt

                    due_at = parse_dt(due_at)
                elif due_at.tzinfo is None:
                    due_at = due_at.replace(tzinfo=ZoneInfo(tz))  # a local time in the task's zone
                due_at = due_at.astimezone(UTC)
                if not MIN_YEAR <= due_at.year <= MAX_YEAR:
                    raise validation([{"pointer": "/due_at",
                                       "detail": f"must be between the years {MIN_YEAR} and {MAX_YEAR}"}])
                out["due_at"] = due_at
                out["due_date"] = None
                out["all_day"] = False
            else:
                out["due_at"] = None
                out["due_date"] = None
                out["all_day"] = False
        except OverflowError:
            pointer = "/due_date" if due_date is not None else "/due_at"
            raise validation([{"pointer": pointer, "detail": "out of range"}]) from None
        out["due_timezone"] = tz

    async def _check_recurrence(self, values: dict[str, Any]) -> None:
        rule = values.get("recurrence")
        if not rule:
            return
        due = values.get("due_at")
        if due is None:
            raise validation([{"pointer": "/recurrence", "detail": "a recurring task needs due_at or due_date"}])
        due_dt = due if isinstance(due, datetime) else datetime.fromisoformat(str(due).replace("Z", "+00:00"))
        if not rule_can_recur(rule, due_dt, values.get("due_timezone") or "UTC", bool(values.get("all_day"))):
            raise validation([{"pointer": "/recurrence", "detail": "this rule never matches a date"}])

    async def _check_project(self, uow: UnitOfWork, project_id: str | None) -> None:
        if project_id is None:
            return
        project = await uow.get(PROJECT, project_id)
        if project is not None and project["archived"]:
            raise validation([{"pointer": "/project_id", "detail": "the project is archived"}])

    async def _check_parent(self, uow: UnitOfWork, parent_id: str, moving_id: str | None) -> dict[str, Any]:
        """The parent, after checking that the move makes no cycle and nests at most MAX_DEPTH deep."""
        parent = await uow.get(TASK, parent_id)
        if parent is None:
            raise validation([{"pointer": "/parent_id", "detail": "no such task in this org"}])
        level = 1  # the parent's level: 1 for a top-level task
        node: dict[str, Any] | None = parent
        seen: set[str] = set()
        while node is not None:
            if moving_id is not None and node["id"] == moving_id:
                raise validation([{"pointer": "/parent_id", "detail": "that would make a cycle of subtasks"}])
            if not node.get("parent_id") or node["id"] in seen or level > MAX_DEPTH:
                break
            seen.add(node["id"])
            node = await uow.get(TASK, node["parent_id"])
            if node is not None:
                level += 1
        height = 1 + (len(await _descendants(uow, moving_id)) if moving_id else 0)
        if level + height > MAX_DEPTH:
            raise validation([{"pointer": "/parent_id", "detail": f"subtasks nest at most {MAX_DEPTH} levels deep"}])
        return parent

    async def _move_subtasks(self, uow: UnitOfWork, task_id: str, project_id: str | None) -> None:
        """Subtasks follow their parent to another project."""
        for level in await _descendants(uow, task_id):
            for sub in level:
                if sub["project_id"] != project_id:
                    before, after = await uow.update(TASK, sub["id"], {"project_id": project_id})
                    self.record_change(uow, "moved", before, after)

    async def _ensure_labels(self, uow: UnitOfWork, names: list[str]) -> None:
        """Todoist-style: using a label creates it. Safe against a concurrent request creating
        the same label (INSERT … ON CONFLICT DO NOTHING on the live-name unique index)."""
        if not names:
            return
        have = {r["name"] for r in await uow.find(LABEL, {})}
        for name in dict.fromkeys(names):
            if name in have:
                continue
            row: dict[str, Any] = {
                "id": new_id(), "org_id": uow.ctx.org_id, "name": name, "color": "#64748b",
                "created_at": uow.now, "created_by": uow.ctx.user_id, "updated_at": uow.now,
                "updated_by": uow.ctx.user_id, "version": 1, "deleted_at": None,
            }
            cols = [c for c in LABEL.all_names if c in row]
            sql = (f"INSERT INTO {LABEL.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                   "ON CONFLICT DO NOTHING")
            if await uow.conn.execute(sql, [LABEL.encode(uow.db, c, row[c]) for c in cols]) != 1:
                continue  # someone else just created it
            rec = await uow.get(LABEL, row["id"])
            uow.audit("tasks", "labels", row["id"], "created", None, rec)
            uow.emit("nexus.tasks.label.created", row["id"], {"id": row["id"], "record": rec, "previous": None})

    # -- completion -----------------------------------------------------------------
    async def _completion(self, uow: UnitOfWork, record: dict[str, Any]) -> dict[str, Any]:
        """The changes that mark `record` done; completes its open subtasks and, for a recurring
        task, creates the next occurrence (once: completing again after a reopen reuses it)."""
        changes: dict[str, Any] = {"status": "done", "completed_at": uow.now, "completed_by": uow.ctx.user_id}
        if record.get("recurrence") and record.get("due_at") is not None:
            existing = record.get("next_occurrence_id")
            if not existing or not await uow.exists(TASK, existing):
                nxt = await self._spawn_next(uow, record)
                if nxt is not None:
                    changes["next_occurrence_id"] = nxt["id"]
        for sub in await uow.find(TASK, {"parent_id": record["id"]}, order_by="created_at"):
            if sub["status"] != "done":
                await self.change(uow, sub, await self._completion(uow, sub), "completed")
        return changes

    async def _reopen_ancestors(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        """A done task has no open subtasks: reopening a subtask reopens its done parents."""
        parent_id = record.get("parent_id")
        for _ in range(MAX_DEPTH):
            if not parent_id:
                return
            parent = await uow.get(TASK, parent_id)
            if parent is None:
                return
            if parent["status"] == "done":
                await self.change(uow, parent, {"status": "todo", "completed_at": None, "completed_by": None},
                                  "reopened")
            parent_id = parent.get("parent_id")

    async def _spawn_next(self, uow: UnitOfWork, record: dict[str, Any]) -> dict[str, Any] | None:
        due = uow.db.read_ts(record["due_at"])
        assert due is not None
        tz = record["due_timezone"] or "UTC"
        got = next_occurrence_and_rule(record["recurrence"], due, tz, now=uow.now, all_day=bool(record["all_day"]))
        if got is None:
            return None
        nxt, rule = got
        values = {k: record[k] for k in ("project_id", "parent_id", "title", "description", "priority", "assignee_id",
                                         "due_timezone", "all_day", "labels", "position")}
        values["recurrence"] = rule
        values["checklist"] = [{**i, "done": False} for i in record.get("checklist") or []]
        values["status"] = "todo"
        values["due_at"] = nxt
        values["due_date"] = (nxt.astimezone(ZoneInfo(tz)).date() if record["all_day"] else None)
        values["recurrence_of"] = record.get("recurrence_of") or record["id"]
        new = await uow.insert(TASK, values)
        self.record_change(uow, "created", None, new)
        return new

    # -- domain actions -----------------------------------------------------------
    async def complete(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] == "done":
            return record
        return await self.change(uow, record, await self._completion(uow, record), "completed")

    async def reopen(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] != "done":
            raise Problem(409, "Only a done task can be reopened.")
        await self._reopen_ancestors(uow, record)
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
        """Kanban: a new column (status), project or position in one step; `project_id: null`
        takes the task out of its project."""
        given = body.model_dump(exclude_unset=True)
        changes = {k: v for k, v in given.items() if (v is not None or k == "project_id") and record.get(k) != v}
        if not changes:
            return record
        await self.check_references(uow, changes)
        await self.before_update(uow, record, changes)
        return await self.change(uow, record, changes, "moved")


class CommentService(RecordService):
    """Record rule: a comment is edited or deleted by its author, or by someone who may moderate."""

    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        if not await uow.exists(TASK, values["task_id"]):
            raise validation([{"pointer": "/task_id", "detail": "no such task in this org"}])

    def _own(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        p = uow.ctx.principal
        if record["created_by"] != p.user_id and not has_permission(p, "tasks.comments.moderate"):
            raise Problem(403, "Only the author can change this comment.")

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        self._own(uow, before)

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        self._own(uow, record)

    async def restore(self, uow: UnitOfWork, record_id: str) -> dict[str, Any]:
        record = await uow.require(self.spec, record_id, include_deleted=True, what="comment")
        self._own(uow, record)
        return await super().restore(uow, record_id)


class LabelService(RecordService):
    """Label names are unique among an org's live labels; renaming one renames it on every task."""

    async def _unique(self, uow: UnitOfWork, name: str, pointer: str = "/name") -> None:
        if await uow.find(LABEL, {"name": name}):
            raise validation([{"pointer": pointer, "detail": "a label with this name exists"}])

    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        await self._unique(uow, values["name"])

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if changes.get("name") is not None and changes["name"] != before["name"]:
            await self._unique(uow, changes["name"])

    async def after_update(self, uow: UnitOfWork, before: dict[str, Any], after: dict[str, Any]) -> None:
        old, new = before["name"], after["name"]
        if old == new:
            return
        if uow.dialect == "sqlite":
            cond, arg = f"EXISTS (SELECT 1 FROM json_each({TASK.name}.labels) WHERE value = ?)", old
        else:
            cond, arg = "labels @> ?::jsonb", [old]  # type: ignore[assignment]
        rows = await uow.conn.fetch(
            f"SELECT id FROM {TASK.name} WHERE org_id = ? AND deleted_at IS NULL AND {cond} ORDER BY id",
            [uow.ctx.org_id, arg])
        for row in rows:
            task = await uow.get(TASK, row[0])
            if task is None:
                continue
            renamed = list(dict.fromkeys(new if n == old else n for n in task["labels"]))
            t_before, t_after = await uow.update(TASK, task["id"], {"labels": renamed})
            _record_task_change(uow, "updated", t_before, t_after)

    async def restore(self, uow: UnitOfWork, record_id: str) -> dict[str, Any]:
        record = await uow.require(LABEL, record_id, include_deleted=True, what="label")
        if record["deleted_at"] is not None and await uow.find(LABEL, {"name": record["name"]}):
            raise Problem(409, "A label with this name exists; rename one of them first.")
        return await super().restore(uow, record_id)


class ProjectService(RecordService):
    async def archive(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        return record if record["archived"] else await self.change(uow, record, {"archived": True}, "archived")

    async def unarchive(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        return record if not record["archived"] else await self.change(uow, record, {"archived": False}, "unarchived")


def _same_all_day(due_date: Any, due_at: Any, tz: str) -> bool:
    """True when due_at is exactly the end of due_date in tz (what an all-day task exports)."""
    try:
        day = date.fromisoformat(due_date) if isinstance(due_date, str) else due_date
        moment = due_at if isinstance(due_at, datetime) else datetime.fromisoformat(str(due_at).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            return False
        return bool(moment.astimezone(UTC) == end_of_day_utc(day, tz))
    except (ValueError, TypeError, KeyError):
        return False
