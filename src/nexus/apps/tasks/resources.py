"""Tasks resources: projects, tasks, comments and labels."""

from __future__ import annotations

from typing import Any

from nexus.kernel.context import Principal
from nexus.kernel.jsonutil import utcnow
from nexus.kernel.resources import Action, Resource, View

from . import models, schemas
from .service import CommentService, LabelService, ProjectService, TaskService


def _mine(p: Principal, db: Any) -> list[tuple[str, list[Any]]]:
    return [("assignee_id = ?", [p.user_id]), ("status <> ?", ["done"])]


def _overdue(p: Principal, db: Any) -> list[tuple[str, list[Any]]]:
    return [("due_at < ?", [db.ts(utcnow())]), ("status <> ?", ["done"])]


def _my_overdue(p: Principal, db: Any) -> list[tuple[str, list[Any]]]:
    return [*_mine(p, db), *_overdue(p, db)[:1]]


projects = Resource(
    app="tasks", name="projects", model=models.Project, create=schemas.ProjectCreate, service=ProjectService,
    filters=("archived", "name"), sorts=("name", "created_at", "updated_at"), search=("name", "description"),
    default_sort="name",
    actions=(Action("archive", "archive", summary="Archive the project"),
             Action("unarchive", "unarchive", summary="Bring the project back")),
    description="Lists of tasks.",
)

tasks = Resource(
    app="tasks", name="tasks", model=models.Task, create=schemas.TaskCreate, service=TaskService,
    filters=("status", "priority", "assignee_id", "project_id", "parent_id", "due_at", "due_date", "all_day", "labels",
             "completed_at", "completed_by", "recurrence", "recurrence_of", "title"),
    sorts=("due_at", "priority", "created_at", "updated_at", "title", "position", "completed_at", "status"),
    search=("title", "description"),
    default_sort="-created_at",
    references={"project_id": "tasks.projects", "parent_id": "tasks.tasks", "assignee_id": "identity.users"},
    actions=(
        Action("complete", "complete", summary="Mark done (and schedule the next occurrence of a recurring task)"),
        Action("reopen", "reopen", summary="Reopen a done task"),
        Action("start", "start", summary="Move to in progress"),
        Action("assign", "assign", schemas.AssignInput, summary="Assign to a user of the org (or nobody)"),
        Action("move", "move", schemas.MoveInput, summary="Change column, project or position (kanban)"),
    ),
    views=(
        View("mine", "My tasks", _mine, default_sort="due_at"),
        View("overdue", "Overdue", _overdue, default_sort="due_at"),
        View("my-overdue", "My overdue tasks", _my_overdue, default_sort="due_at"),
    ),
    description="Things to do: subtasks, due dates, recurrence, labels and checklists.",
)

comments = Resource(
    app="tasks", name="comments", model=models.Comment, create=schemas.CommentCreate, update=schemas.CommentUpdate,
    service=CommentService, filters=("task_id",), sorts=("created_at",), search=("body",), default_sort="created_at",
    references={"task_id": "tasks.tasks"}, title_field="body",
    description="Discussion on a task.",
)

labels = Resource(
    app="tasks", name="labels", model=models.Label, create=schemas.LabelCreate, service=LabelService,
    filters=("name",), sorts=("name", "created_at"), search=("name",), default_sort="name",
)

RESOURCES = [projects, tasks, comments, labels]
