"""Background jobs and cron schedules (DESIGN.md §1): a durable queue in the database.

* `nx.jobs.enqueue(name, payload, org_id=…)` writes a row to `kernel_job`; `enqueue_in(uow, …)`
  writes it inside a unit of work, so the job exists exactly when the change committed.
* Workers claim due jobs, highest priority first: PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite
  under its single writer. A claimed job is invisible to other workers until `locked_until`
  (the visibility timeout), which its worker pushes forward while the job runs; the jobs of a
  worker that crashed become claimable again once it lapses.
* A failed attempt is retried after exponential back-off with jitter; after `max_attempts` the
  job is `dead` (the dead letter), kept for inspection and retry through the API. A handler
  that raises `JobFailed` fails the job at once (`failed`), without retries.
* Unique jobs: at most one job of a name with a given `unique_key` is queued or running;
  enqueueing another returns the waiting job's id.
* Schedules (cron, UTC): every worker looks at due schedules; the one whose compare-and-set
  moves `next_run_at` on enqueues the job, so a tick fires once however many processes run.
  A scheduled job does not pile up: while the previous one waits or runs, the tick is skipped.
* `nexus serve` runs a worker in-process unless NEXUS_WORKER=external; `nexus worker` runs
  one (plus the event dispatcher) without HTTP. Any number of workers may run at once.

Delivery is at least once: a handler must tolerate running again (after a crash, a lapsed
visibility timeout, or a retry of a job that had partly done its work).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from croniter import croniter
from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.context import system_context
from nexus.kernel.db import is_unique_violation
from nexus.kernel.errors import Problem, not_found
from nexus.kernel.http.crud import query_params
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.ids import new_id
from nexus.kernel.jsonutil import dumps, loads, utcnow
from nexus.kernel.models import Job
from nexus.kernel.permissions import require
from nexus.kernel.query import fetch_page
from nexus.kernel.records import TableSpec, UnitOfWork

if TYPE_CHECKING:
    from nexus.kernel.db import Conn, Database
    from nexus.kernel.http.app import Nexus

log = logging.getLogger("nexus.jobs")

QUEUED, RUNNING, DONE, FAILED, DEAD, CANCELLED = "queued", "running", "done", "failed", "dead", "cancelled"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, DEAD, CANCELLED)
FINISHED = (DONE, FAILED, DEAD, CANCELLED)

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_TIMEOUT = 300.0  # seconds one attempt may run before it counts as failed
MAX_PRIORITY = 1000
DONE_RETENTION = timedelta(days=7)  # done and cancelled jobs are deleted by kernel.cleanup after this
DEAD_RETENTION = timedelta(days=30)  # dead and failed jobs (the dead letters) after this
IDEMPOTENCY_RETENTION = timedelta(hours=24)

JOB = TableSpec(Job)
Handler = Callable[["JobContext", dict[str, Any]], Awaitable[None]]


class JobFailed(Exception):
    """Raise from a handler to fail the job now, without further attempts (a permanent error)."""


@dataclass(frozen=True)
class JobType:
    name: str
    handler: Handler
    max_attempts: int
    timeout: float


@dataclass(frozen=True)
class ScheduleDecl:
    name: str
    cron: str
    job_name: str
    payload: dict[str, Any]
    org_id: str | None


@dataclass
class JobContext:
    """What a handler gets besides its payload."""

    queue: JobQueue
    id: str
    name: str
    org_id: str | None
    attempt: int  # 1 for the first attempt
    max_attempts: int

    @property
    def db(self) -> Database:
        return self.queue.db

    @property
    def nexus(self) -> Nexus | None:
        return self.queue.nexus

    def uow(self) -> UnitOfWork:
        """A unit of work in the job's org, acting as the system (audit entries name it)."""
        if self.org_id is None:
            raise RuntimeError(f"job {self.name} has no org; open the database directly")
        return UnitOfWork(self.db, system_context(self.org_id, request_id=f"job:{self.id}"))


@dataclass
class _Claimed:
    id: str
    org_id: str | None
    name: str
    payload: dict[str, Any]
    priority: int
    attempts: int
    max_attempts: int


def next_run(cron: str, after: datetime) -> datetime:
    """The first time after `after` that the cron expression (UTC) names."""
    got: datetime = croniter(cron, after.astimezone(UTC)).get_next(datetime)
    return got if got.tzinfo else got.replace(tzinfo=UTC)


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:2000]


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, (str, bytes)):
        value = loads(value)
    return value if isinstance(value, dict) else {}


_INSERT = ("INSERT INTO kernel_job (id, org_id, name, payload, priority, status, attempts, max_attempts, run_at,"
           " unique_key, created_at) VALUES (?,?,?,?,?,'queued',0,?,?,?,?)")


class JobQueue:
    """`nx.jobs`: the job types and schedules this process knows, and the queue's operations."""

    def __init__(self, db: Database, *, nexus: Nexus | None = None) -> None:
        self.db = db
        self.nexus = nexus
        self.types: dict[str, JobType] = {}
        self.schedules: dict[str, ScheduleDecl] = {}
        # Tunables (attributes so that tests and deployments can change them).
        self.backoff_base = 2.0  # seconds before the first retry; doubles per attempt
        self.backoff_max = 3600.0
        self.visibility = 60.0  # seconds a claim lasts without its worker renewing it
        self.poll_interval = 0.5  # seconds an idle worker waits before looking again
        self.concurrency = 8  # jobs one worker runs at once
        self.runners: list[JobRunner] = []
        self._schedules_dirty = False

    # -- declaration -----------------------------------------------------------------
    def register(self, name: str, handler: Handler, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        """Declare a job type: `async def handler(ctx: JobContext, payload: dict) -> None`."""
        if name in self.types:
            raise ValueError(f"job type {name!r} is registered twice")
        if not 1 <= max_attempts <= 100:
            raise ValueError("max_attempts is 1 to 100")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.types[name] = JobType(name, handler, max_attempts, float(timeout))

    def schedule(self, name: str, cron: str, job_name: str, payload: dict[str, Any] | None = None, *,
                 org_id: str | None = None) -> None:
        """Declare a cron schedule (UTC). Stored at start; the first tick is the next cron time."""
        if not croniter.is_valid(cron):
            raise ValueError(f"schedule {name!r}: {cron!r} is not a cron expression")
        self.schedules[name] = ScheduleDecl(name, cron, job_name, dict(payload or {}), org_id)
        self._schedules_dirty = True

    # -- enqueueing ------------------------------------------------------------------
    def _prepare(self, name: str, payload: dict[str, Any], priority: int, run_at: datetime | None,
                 max_attempts: int | None) -> tuple[dict[str, Any], datetime, int]:
        jt = self.types.get(name)
        if jt is None:
            raise ValueError(f"no job type {name!r} is registered")
        if not isinstance(payload, dict):
            raise TypeError("a job's payload is a dict")
        if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
            raise ValueError(f"priority is {-MAX_PRIORITY} to {MAX_PRIORITY}")
        if run_at is not None and run_at.tzinfo is None:
            run_at = run_at.replace(tzinfo=UTC)
        # Round-trip through the server's JSON codec: refuses what JSON cannot hold, and the
        # handler sees exactly what a later read gives (decimals and times as strings).
        data = loads(dumps(payload))
        return data, run_at or utcnow(), max_attempts or jt.max_attempts

    async def _insert(self, conn: Conn, *, name: str, payload: dict[str, Any], org_id: str | None, priority: int,
                      run_at: datetime, unique_key: str | None, max_attempts: int, now: datetime) -> str:
        db = self.db
        job_id = new_id()
        params = [job_id, org_id, name, db.json(payload), priority, max_attempts, db.ts(run_at), unique_key,
                  db.ts(now)]
        if unique_key is None:
            await conn.execute(_INSERT, params)
            return job_id
        for _ in range(5):
            if await conn.execute(_INSERT + " ON CONFLICT DO NOTHING", params) == 1:
                return job_id
            existing = await conn.fetchval(
                "SELECT id FROM kernel_job WHERE name = ? AND unique_key = ? AND status IN ('queued', 'running')",
                [name, unique_key])
            if existing is not None:
                return str(existing)
            # The waiting job finished between the two statements: try the insert again.
        raise RuntimeError(f"could not enqueue unique job {name}:{unique_key}")

    async def enqueue(self, name: str, payload: dict[str, Any] | None = None, *, org_id: str | None,
                      priority: int = 0, run_at: datetime | None = None, unique_key: str | None = None,
                      max_attempts: int | None = None) -> str:
        """Queue a job now (its own transaction); returns its id — for a unique job whose key
        is already queued or running, the waiting job's id. `org_id=None` is a platform job."""
        data, when, attempts = self._prepare(name, payload or {}, priority, run_at, max_attempts)
        async with self.db.transaction() as conn:
            job_id = await self._insert(conn, name=name, payload=data, org_id=org_id, priority=priority, run_at=when,
                                        unique_key=unique_key, max_attempts=attempts, now=utcnow())
        self.wake()
        return job_id

    async def enqueue_in(self, uow: UnitOfWork, name: str, payload: dict[str, Any] | None = None, *,
                         org_id: str | None = None, priority: int = 0, run_at: datetime | None = None,
                         unique_key: str | None = None, max_attempts: int | None = None) -> str:
        """Queue a job as part of a unit of work (the uow's org unless `org_id` says otherwise):
        it is committed with the change, or not at all."""
        data, when, attempts = self._prepare(name, payload or {}, priority, run_at, max_attempts)
        org = uow.ctx.org_id if org_id is None else org_id
        db = self.db
        if unique_key is None:
            job_id = new_id()
            # Buffered on PostgreSQL: an insert-only change still commits as one statement.
            await uow.write(_INSERT, [job_id, org, name, db.json(data), priority, attempts, db.ts(when), None,
                                      db.ts(uow.now)])
        else:
            job_id = await self._insert(uow.conn, name=name, payload=data, org_id=org, priority=priority, run_at=when,
                                        unique_key=unique_key, max_attempts=attempts, now=uow.now)
        uow.after_commit.append(self.wake)
        return job_id

    def wake(self) -> None:
        """Tell this process's workers there is new work (others find it by polling)."""
        for r in self.runners:
            r.wake()

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after `attempts` failed ones: exponential, with jitter."""
        delay = min(self.backoff_base * 2 ** max(attempts - 1, 0), self.backoff_max)
        return delay * (0.5 + random.random() / 2)

    # -- schedules ---------------------------------------------------------------------
    async def sync_schedules(self) -> None:
        """Store the declared schedules; a changed cron expression restarts its clock."""
        self._schedules_dirty = False
        if not self.schedules:
            return
        db = self.db
        now = utcnow()
        async with db.transaction() as conn:
            for s in self.schedules.values():
                await conn.execute(
                    "INSERT INTO kernel_schedule (name, org_id, cron, job_name, payload, next_run_at, last_run_at)"
                    " VALUES (?,?,?,?,?,?,NULL) ON CONFLICT (name) DO UPDATE SET org_id = excluded.org_id,"
                    " job_name = excluded.job_name, payload = excluded.payload, cron = excluded.cron,"
                    " next_run_at = CASE WHEN kernel_schedule.cron = excluded.cron"
                    " THEN kernel_schedule.next_run_at ELSE excluded.next_run_at END",
                    [s.name, s.org_id, s.cron, s.job_name, db.json(s.payload), db.ts(next_run(s.cron, now))])

    async def tick_schedules(self, now: datetime | None = None) -> int:
        """Enqueue the job of every due schedule whose tick this process wins; returns how many."""
        if self._schedules_dirty:
            await self.sync_schedules()
        db = self.db
        now = now or utcnow()
        async with db.reader() as conn:
            rows = await conn.fetch(
                "SELECT name, org_id, cron, job_name, payload, next_run_at FROM kernel_schedule"
                " WHERE next_run_at <= ?", [db.ts(now)])
        fired = 0
        for name, org_id, cron, job_name, payload, due in rows:
            try:
                following = next_run(cron, now)
            except Exception as exc:
                log.error("bad cron expression", extra={"fields": {"schedule": name, "cron": cron,
                                                                   "error": str(exc)[:200]}})
                continue
            jt = self.types.get(job_name)
            async with db.transaction() as tx:
                # Compare-and-set on the due time: of all processes that saw this tick, one wins.
                won = await tx.execute(
                    "UPDATE kernel_schedule SET next_run_at = ?, last_run_at = ? WHERE name = ? AND next_run_at = ?",
                    [db.ts(following), db.ts(now), name, due])
                if won != 1:
                    continue
                await self._insert(tx, name=job_name, payload=_as_dict(payload), org_id=org_id, priority=0,
                                   run_at=db.read_ts(due) or now, unique_key=f"schedule:{name}",
                                   max_attempts=jt.max_attempts if jt else DEFAULT_MAX_ATTEMPTS, now=now)
            fired += 1
        if fired:
            self.wake()
        return fired

    # -- inspection and admin ---------------------------------------------------------
    async def get(self, job_id: str, *, org_id: str | None) -> dict[str, Any] | None:
        async with self.db.reader() as conn:
            if org_id is None:
                row = await conn.fetchrow(f"SELECT {JOB.select_list} FROM kernel_job WHERE id = ?", [job_id])
            else:
                row = await conn.fetchrow(f"SELECT {JOB.select_list} FROM kernel_job WHERE id = ? AND org_id = ?",
                                          [job_id, org_id])
        return None if row is None else JOB.to_dict(self.db.dialect, row)

    async def queue_depth(self) -> int:
        """Jobs that are due and waiting for a worker (for /metrics)."""
        async with self.db.reader() as conn:
            n = await conn.fetchval("SELECT count(*) FROM kernel_job WHERE status = 'queued' AND run_at <= ?",
                                    [self.db.ts(utcnow())])
        return int(n or 0)

    async def oldest_queued_age(self) -> float:
        """Seconds the longest-waiting due job has waited past its run time; 0 when none (for /metrics)."""
        now = utcnow()
        async with self.db.reader() as conn:
            oldest = await conn.fetchval("SELECT min(run_at) FROM kernel_job WHERE status = 'queued' AND run_at <= ?",
                                         [self.db.ts(now)])
        when = self.db.read_ts(oldest)
        return max((now - when).total_seconds(), 0.0) if when else 0.0

    async def counts(self) -> dict[str, int]:
        """Jobs by status (for /metrics and operators)."""
        async with self.db.reader() as conn:
            rows = await conn.fetch("SELECT status, count(*) FROM kernel_job GROUP BY status")
        out = dict.fromkeys(STATUSES, 0)
        out.update({r[0]: int(r[1]) for r in rows})
        return out

    async def cleanup(self, now: datetime | None = None) -> dict[str, int]:
        """Delete expired idempotency records and old finished jobs (the kernel.cleanup job)."""
        db = self.db
        now = now or utcnow()
        async with db.transaction() as conn:
            idem = await conn.execute("DELETE FROM kernel_idempotency WHERE created_at < ?",
                                      [db.ts(now - IDEMPOTENCY_RETENTION)])
            done = await conn.execute(
                "DELETE FROM kernel_job WHERE status IN ('done', 'cancelled') AND finished_at < ?",
                [db.ts(now - DONE_RETENTION)])
            dead = await conn.execute(
                "DELETE FROM kernel_job WHERE status IN ('dead', 'failed') AND finished_at < ?",
                [db.ts(now - DEAD_RETENTION)])
        return {"idempotency": idem, "done_jobs": done, "dead_jobs": dead}


# For the worker's own bookkeeping transactions on PostgreSQL (claims and outcomes):
# * synchronous_commit off: no wait for the WAL flush. A database crash may forget the last
#   fraction of a second of them; a forgotten claim or outcome only makes a job run again,
#   which at-least-once delivery allows (enqueues and the handlers' own writes stay durable).
# * no sort, no bitmap scan: the claim walks ix_kernel_job_claim in order and stops after n
#   rows, whatever the statistics say (right after a bulk enqueue they still describe an empty
#   table, and the planner would sort the whole backlog for every claim).
_PG_CYCLE_SETTINGS = ("SET LOCAL synchronous_commit = off; SET LOCAL enable_sort = off;"
                      " SET LOCAL enable_bitmapscan = off")


class JobRunner:
    """One worker: claims due jobs of the types its queue knows and runs them, up to
    `concurrency` at a time; renews its claims, recovers lapsed ones, fires schedules."""

    def __init__(self, queue: JobQueue, *, concurrency: int | None = None, holder: str | None = None) -> None:
        self.queue = queue
        self.db = queue.db
        self._concurrency = concurrency
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.running: dict[str, asyncio.Task[None]] = {}
        self._results: list[tuple[str, str, list[Any]]] = []  # (kind, job id, params)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = False
        self._stopping = False
        self._next_maintenance = 0.0
        self._next_heartbeat = 0.0

    @property
    def concurrency(self) -> int:
        """Jobs run at once: this runner's own setting, or its queue's."""
        return self._concurrency or self.queue.concurrency

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self.queue.runners.append(self)
        self._task = asyncio.create_task(self._loop(), name="nexus-jobs")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, give running jobs `grace` seconds, then put the rest back in the queue."""
        self._stopping = True
        if self in self.queue.runners:
            self.queue.runners.remove(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=grace)
        for t in list(self.running.values()):
            t.cancel()
        for t in list(self.running.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        try:
            await self._cycle(0)
            async with self.db.transaction() as conn:
                # Interrupted by the shutdown, not by their own fault: back to the queue, the
                # attempt not counted, claimable at once rather than after the visibility timeout.
                await conn.execute(
                    "UPDATE kernel_job SET status = 'queued', locked_by = NULL, locked_until = NULL,"
                    " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"
                    " WHERE locked_by = ? AND status = 'running'", [self.holder])
        except Exception:
            log.exception("could not release claimed jobs; they return after the visibility timeout")

    def wake(self) -> None:
        self._idle = False
        self._wake.set()

    # -- one pass (tests and tools drive the runner with this) --------------------------
    async def run_once(self) -> int:
        """Maintenance, then claim up to `concurrency` due jobs, run them to the end and record
        the outcomes; returns how many ran."""
        await self.maintain()
        claimed = await self._cycle(self.concurrency)
        for job in claimed:
            self._spawn(job)
        if self.running:
            await asyncio.wait(list(self.running.values()))
        await self._cycle(0)
        return len(claimed)

    async def maintain(self) -> None:
        """Renew our claims, requeue lapsed claims, fire due schedules."""
        await self.heartbeat()
        await self.recover()
        await self.queue.tick_schedules()

    # -- the loop ------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            busy = False
            try:
                now = time.monotonic()
                if now >= self._next_heartbeat and self.running:
                    await self.heartbeat()
                if now >= self._next_maintenance:
                    self._next_maintenance = now + 1.0
                    await self.recover()
                    await self.queue.tick_schedules()
                free = self.concurrency - len(self.running)
                claimed = await self._cycle(free)
                for job in claimed:
                    self._spawn(job)
                busy = free > 0 and len(claimed) == free
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job worker pass failed")
                await asyncio.sleep(1.0)
            if busy or self._results:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            timeout = self.queue.poll_interval
            if self.running:
                timeout = min(timeout, max(self._next_heartbeat - time.monotonic(), 0.0))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _cycle(self, free: int) -> list[_Claimed]:
        """In one transaction: record the outcomes gathered so far, and claim up to `free` jobs."""
        results, self._results = self._results, []
        names = list(self.queue.types)
        want = free if names else 0
        if want and not results and self._idle and not await self._any_due(names):
            return []
        if not want and not results:
            return []
        db = self.db
        now = utcnow()
        claimed: list[_Claimed] = []
        try:
            async with db.transaction() as conn:
                if db.dialect == "postgresql":
                    await conn.execute(_PG_CYCLE_SETTINGS)
                if results:
                    await self._record(conn, results, now)
                if want:
                    claimed = await self._claim(conn, names, want, now)
        except BaseException:
            self._results = results + self._results  # not recorded: keep for the next pass
            raise
        self._idle = len(claimed) < want
        return claimed

    async def _any_due(self, names: list[str]) -> bool:
        db = self.db
        async with db.reader() as conn:
            if db.dialect == "postgresql":
                got = await conn.fetchval(
                    "SELECT 1 FROM kernel_job WHERE status = 'queued' AND run_at <= ? AND name = ANY(?::text[]) LIMIT 1",
                    [db.ts(utcnow()), names])
            else:
                got = await conn.fetchval(
                    f"SELECT 1 FROM kernel_job WHERE status = 'queued' AND run_at <= ?"
                    f" AND name IN ({','.join('?' * len(names))}) LIMIT 1", [db.ts(utcnow()), *names])
        return got is not None

    async def _claim(self, conn: Conn, names: list[str], n: int, now: datetime) -> list[_Claimed]:
        db = self.db
        until = db.ts(now + timedelta(seconds=self.queue.visibility))
        head = ("UPDATE kernel_job SET status = 'running', attempts = attempts + 1, locked_by = ?, locked_until = ?,"
                " started_at = ? WHERE id IN (SELECT id FROM kernel_job WHERE status = 'queued' AND run_at <= ?")
        tail = " RETURNING id, org_id, name, payload, priority, attempts, max_attempts"
        if db.dialect == "postgresql":
            sql = (head + " AND name = ANY(?::text[]) ORDER BY priority DESC, run_at, id LIMIT ?"
                   " FOR UPDATE SKIP LOCKED)" + tail)
            params: list[Any] = [self.holder, until, db.ts(now), db.ts(now), names, n]
        else:
            # SQLite: BEGIN IMMEDIATE made this the only writer of the database file.
            sql = (head + f" AND name IN ({','.join('?' * len(names))}) ORDER BY priority DESC, run_at, id LIMIT ?)"
                   + tail)
            params = [self.holder, until, db.ts(now), db.ts(now), *names, n]
        rows = await conn.fetch(sql, params)
        jobs = [_Claimed(r[0], r[1], r[2], _as_dict(r[3]), r[4], r[5], r[6]) for r in rows]
        jobs.sort(key=lambda j: (-j.priority, j.id))
        if jobs and self._next_heartbeat < time.monotonic():
            self._next_heartbeat = time.monotonic() + self.queue.visibility / 3
        return jobs

    async def _record(self, conn: Conn, results: list[tuple[str, str, list[Any]]], now: datetime) -> None:
        db = self.db
        ts = db.ts(now)
        done = [job_id for kind, job_id, _ in results if kind == DONE]
        for i in range(0, len(done), 200):
            chunk = done[i : i + 200]
            await conn.execute(
                "UPDATE kernel_job SET status = 'done', finished_at = ?, locked_by = NULL, locked_until = NULL"
                f" WHERE status = 'running' AND locked_by = ? AND id IN ({','.join('?' * len(chunk))})",
                [ts, self.holder, *chunk])
        for kind, job_id, params in results:
            if kind == QUEUED:  # a retry: params = [run_at, error]
                await conn.execute(
                    "UPDATE kernel_job SET status = 'queued', run_at = ?, last_error = ?, locked_by = NULL,"
                    " locked_until = NULL WHERE id = ? AND status = 'running' AND locked_by = ?",
                    [db.ts(params[0]), params[1], job_id, self.holder])
            elif kind in (DEAD, FAILED):  # params = [error]
                await conn.execute(
                    "UPDATE kernel_job SET status = ?, last_error = ?, finished_at = ?, locked_by = NULL,"
                    " locked_until = NULL WHERE id = ? AND status = 'running' AND locked_by = ?",
                    [kind, params[0], ts, job_id, self.holder])
            elif kind == "release":  # interrupted by shutdown: back to the queue, attempt not counted
                await conn.execute(
                    "UPDATE kernel_job SET status = 'queued', locked_by = NULL, locked_until = NULL,"
                    " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"
                    " WHERE id = ? AND status = 'running' AND locked_by = ?", [job_id, self.holder])

    # -- running one job ---------------------------------------------------------------
    def _spawn(self, job: _Claimed) -> None:
        task = asyncio.create_task(self._execute(job), name=f"nexus-job-{job.name}")
        self.running[job.id] = task

    async def _execute(self, job: _Claimed) -> None:
        jt = self.queue.types[job.name]
        ctx = JobContext(self.queue, job.id, job.name, job.org_id, job.attempts, job.max_attempts)
        outcome: tuple[str, str, list[Any]] | None
        deadline = asyncio.timeout(jt.timeout)
        try:
            try:
                async with deadline:
                    await jt.handler(ctx, job.payload)
            except TimeoutError as exc:
                if not deadline.expired():
                    raise  # the handler's own time-out, not ours
                raise TimeoutError(f"the attempt ran longer than {jt.timeout:g} s") from exc
        except asyncio.CancelledError:
            # Stopped by shutdown (back to the queue), or its claim is gone (cancelled by an
            # admin, or taken over after a lapsed claim): nothing more to record.
            outcome = ("release", job.id, []) if self._stopping else None
        except JobFailed as exc:
            log.warning("job failed", extra={"fields": {"job": job.id, "name": job.name, "error": _error_text(exc)}})
            outcome = (FAILED, job.id, [_error_text(exc)])
        except Exception as exc:
            error = _error_text(exc)
            if job.attempts >= job.max_attempts:
                log.error("job is dead after its last attempt", exc_info=True,
                          extra={"fields": {"job": job.id, "name": job.name, "attempts": job.attempts}})
                outcome = (DEAD, job.id, [error])
            else:
                delay = self.queue.backoff(job.attempts)
                log.warning("job attempt failed; retrying", exc_info=True,
                            extra={"fields": {"job": job.id, "name": job.name, "attempts": job.attempts,
                                              "retry_in_s": round(delay, 3)}})
                outcome = (QUEUED, job.id, [utcnow() + timedelta(seconds=delay), error])
        else:
            outcome = (DONE, job.id, [])
        finally:
            self.running.pop(job.id, None)
        if outcome is not None:
            self._results.append(outcome)
        self._wake.set()

    # -- claims ------------------------------------------------------------------------
    async def heartbeat(self) -> None:
        """Extend the claims on the jobs this worker runs; stop those whose claim is gone."""
        self._next_heartbeat = time.monotonic() + self.queue.visibility / 3
        if not self.running:
            return
        db = self.db
        held = list(self.running)
        until = db.ts(utcnow() + timedelta(seconds=self.queue.visibility))
        still: set[str] = set()
        async with db.transaction() as conn:
            for i in range(0, len(held), 200):
                chunk = held[i : i + 200]
                rows = await conn.fetch(
                    f"UPDATE kernel_job SET locked_until = ? WHERE locked_by = ? AND status = 'running'"
                    f" AND id IN ({','.join('?' * len(chunk))}) RETURNING id", [until, self.holder, *chunk])
                still.update(r[0] for r in rows)
        for job_id in held:
            task = self.running.get(job_id)
            if job_id not in still and task is not None:
                log.info("job claim lost (cancelled or taken over); stopping it", extra={"fields": {"job": job_id}})
                task.cancel()

    async def recover(self) -> int:
        """Requeue jobs whose worker stopped renewing its claim (crashed, frozen, cut off);
        a job out of attempts becomes dead. Returns how many."""
        db = self.db
        now = db.ts(utcnow())
        async with db.reader() as conn:
            lapsed = await conn.fetchval(
                "SELECT 1 FROM kernel_job WHERE status = 'running' AND locked_until < ? LIMIT 1", [now])
        if lapsed is None:
            return 0
        error = "the worker running it stopped renewing its claim (visibility timeout)"
        async with db.transaction() as conn:
            n = await conn.execute(
                "UPDATE kernel_job SET status = 'dead', finished_at = ?, last_error = ?, locked_by = NULL,"
                " locked_until = NULL WHERE status = 'running' AND locked_until < ? AND attempts >= max_attempts",
                [now, error, now])
            n += await conn.execute(
                "UPDATE kernel_job SET status = 'queued', last_error = ?, locked_by = NULL, locked_until = NULL"
                " WHERE status = 'running' AND locked_until < ?", [error, now])
        if n:
            log.warning("requeued jobs of a lost worker", extra={"fields": {"jobs": n}})
            self.wake()
        return n


# -- built-in jobs ---------------------------------------------------------------------------


async def _noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Does nothing: for checking that workers run, and for measuring the queue itself."""


async def _cleanup(ctx: JobContext, payload: dict[str, Any]) -> None:
    removed = await ctx.queue.cleanup()
    log.info("cleanup", extra={"fields": removed})


# -- admin API ---------------------------------------------------------------------------------

FILTERS = ("status", "name", "priority", "run_at", "created_at", "finished_at", "unique_key")
SORTS = ("created_at", "run_at", "priority", "finished_at", "attempts")


def jobs_of(nx: Nexus) -> JobQueue:
    return nx.state["jobs"]  # type: ignore[no-any-return]


async def list_jobs(req: Request) -> Response:
    """The org's jobs, newest first; filter by status and name."""
    nx: Nexus = req.scope["nexus"]
    p = await nx.principal(req)
    require(p, "jobs.queue.read")
    params = query_params(req)
    page = await fetch_page(nx.db, nx.cursors, JOB, p.org_id, params, filters=FILTERS, sorts=SORTS,
                            default_sort="-created_at")
    return Response(dumps(page), media_type="application/json")

async def get_job(req: Request) -> Response:
    nx: Nexus = req.scope["nexus"]
    p = await nx.principal(req)
    require(p, "jobs.queue.read")
    async with nx.db.reader() as conn:
        row = await conn.fetchrow(f"SELECT {JOB.select_list} FROM kernel_job WHERE id = ? AND org_id = ?",
                                  [req.path_params["id"], p.org_id])
    if row is None:
        raise not_found("job")
    return Response(dumps(JOB.to_output(nx.db.dialect, row)), media_type="application/json")


async def _change(req: Request, action: str) -> Response:
    nx: Nexus = req.scope["nexus"]
    p = await nx.principal(req)
    require(p, "jobs.queue.manage")
    ctx = await nx.context(req)
    job_id = req.path_params["id"]
    db = nx.db
    try:
        async with UnitOfWork(db, ctx) as uow:
            row = await uow.conn.fetchrow(
                f"SELECT {JOB.select_list} FROM kernel_job WHERE id = ? AND org_id = ?"
                + (" FOR UPDATE" if db.dialect == "postgresql" else ""), [job_id, p.org_id])
            if row is None:
                raise not_found("job")
            before = JOB.to_dict(db.dialect, row)
            now = db.ts(uow.now)
            if action == "cancel":
                if before["status"] not in (QUEUED, RUNNING):
                    raise Problem(409, f"The job is {before['status']}; only queued or running jobs can be cancelled.",
                                  extra={"job_status": before["status"]})
                # A running job's worker notices at its next renewal and stops the handler.
                await uow.conn.execute(
                    "UPDATE kernel_job SET status = 'cancelled', finished_at = ?, locked_until = NULL WHERE id = ?",
                    [now, job_id])
            else:
                if before["status"] not in (DEAD, FAILED, CANCELLED):
                    raise Problem(409, f"The job is {before['status']}; only dead, failed or cancelled jobs can be "
                                       "retried.", extra={"job_status": before["status"]})
                await uow.conn.execute(
                    "UPDATE kernel_job SET status = 'queued', attempts = 0, run_at = ?, locked_by = NULL,"
                    " locked_until = NULL, started_at = NULL, finished_at = NULL WHERE id = ?", [now, job_id])
            after_row = await uow.conn.fetchrow(f"SELECT {JOB.select_list} FROM kernel_job WHERE id = ?", [job_id])
            assert after_row is not None
            after = JOB.to_dict(db.dialect, after_row)
            uow.audit("jobs", "queue", job_id, action, {"status": before["status"]}, {"status": after["status"]})
    except Exception as exc:
        if is_unique_violation(exc):
            raise Problem(409, "A job of this name with the same unique key is already queued or running.") from None
        raise
    if action == "retry":
        jobs_of(nx).wake()
    return Response(dumps(JOB.to_output(db.dialect, after_row)), media_type="application/json")


async def retry_job(req: Request) -> Response:
    """Queue a dead, failed or cancelled job again, with its attempts reset."""
    return await _change(req, "retry")


async def cancel_job(req: Request) -> Response:
    """Cancel a queued or running job."""
    return await _change(req, "cancel")


async def list_schedules(req: Request) -> Response:
    """The cron schedules: the org's own and the platform's."""
    nx: Nexus = req.scope["nexus"]
    p = await nx.principal(req)
    require(p, "jobs.queue.read")
    async with nx.db.reader() as conn:
        rows = await conn.fetch(
            "SELECT name, org_id, cron, job_name, payload, next_run_at, last_run_at FROM kernel_schedule"
            " WHERE org_id = ? OR org_id IS NULL ORDER BY name", [p.org_id])
    db = nx.db
    items = []
    for name, org_id, cron, job_name, payload, next_at, last_at in rows:
        items.append({"name": name, "org_id": org_id, "cron": cron, "job_name": job_name,
                      "payload": _as_dict(payload) if org_id is not None else None,
                      "next_run_at": db.read_ts(next_at), "last_run_at": db.read_ts(last_at)})
    return Response(dumps({"items": items}), media_type="application/json")


ROUTES = [
    RouteDef("GET", "/api/v1/jobs", list_jobs, tags=("jobs",), summary="The org's background jobs"),
    RouteDef("GET", "/api/v1/jobs/schedules", list_schedules, tags=("jobs",), summary="Cron schedules"),
    RouteDef("GET", "/api/v1/jobs/{id}", get_job, tags=("jobs",), summary="One job"),
    RouteDef("POST", "/api/v1/jobs/{id}/retry", retry_job, tags=("jobs",), summary="Retry a dead or failed job"),
    RouteDef("POST", "/api/v1/jobs/{id}/cancel", cancel_job, tags=("jobs",), summary="Cancel a queued or running job"),
]


def install(nx: Nexus) -> None:
    queue = JobQueue(nx.db, nexus=nx)
    nx.state["jobs"] = queue
    nx.jobs = queue  # type: ignore[attr-defined]
    queue.register("kernel.noop", _noop, max_attempts=1, timeout=60)
    queue.register("kernel.cleanup", _cleanup, max_attempts=3, timeout=600)
    queue.schedule("kernel.cleanup", "17 * * * *", "kernel.cleanup")
    for rd in ROUTES:
        nx.router.add(rd)
    runner = JobRunner(queue)

    async def start() -> None:
        await queue.sync_schedules()
        if nx.settings.worker_mode != "external":
            await runner.start()

    async def stop() -> None:
        if runner._task is not None:
            await runner.stop()

    nx.on("background", start)
    nx.on("shutdown", stop)
