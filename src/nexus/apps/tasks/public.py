"""What other apps may call on Tasks (CRM links activities to tasks through this)."""

from __future__ import annotations

from typing import Any

from nexus.kernel.context import Context
from nexus.kernel.db import Database
from nexus.kernel.records import UnitOfWork

from .resources import tasks as _tasks
from .schemas import TaskCreate

__all__ = ["TaskCreate", "create_task", "create_task_in", "get_task"]


async def create_task(db: Database, ctx: Context, data: TaskCreate) -> dict[str, Any]:
    """Create a task as `ctx`'s caller, with every rule, audit entry and event of the API path."""
    async with UnitOfWork(db, ctx) as uow:
        return await _tasks.service_instance.create(uow, data.model_dump())


async def create_task_in(uow: UnitOfWork, data: TaskCreate) -> dict[str, Any]:
    """Create a task inside the caller's unit of work, so it commits (or not) with the caller's
    change — CRM's task activities and their task are one transaction."""
    return await _tasks.service_instance.create(uow, data.model_dump())


async def get_task(db: Database, ctx: Context, task_id: str) -> dict[str, Any] | None:
    async with UnitOfWork(db, ctx) as uow:
        return await uow.get(_tasks.spec, task_id)
