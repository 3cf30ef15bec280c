"""Jobs and schedules: the durable queue, retries, dead letters, unique jobs, visibility
timeouts, cron schedules across competing workers, the admin API and `nexus worker`."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from nexus.kernel import migrate
from nexus.kernel.config import ConfigError, Settings
from nexus.kernel.context import system_context
from nexus.kernel.http.app import Nexus
from nexus.kernel.jobs import JobContext, JobFailed, JobQueue, JobRunner, next_run
from nexus.kernel.jsonutil import utcnow
from nexus.kernel.records import UnitOfWork
from tests.conftest import _pg_admin, make_settings
from tests.factories import Actor, audit_rows, make_role, new_org

NEXUS = str(Path(sys.executable).parent / "nexus")


async def wait_for(pred, timeout: float = 15.0) -> Any:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await pred()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


def tok() -> str:
    return secrets.token_hex(4)


@pytest.fixture
def queue(nx: Nexus) -> JobQueue:
    """A queue of the test's own job types over the shared database: the in-process worker of
    `nx` does not know these types, so only the runners the test drives run them."""
    q = JobQueue(nx.db)
    q.backoff_base = 0.05
    return q


async def job(nx: Nexus, job_id: str) -> dict[str, Any]:
    row = await nx.jobs.get(job_id, org_id=None)  # type: ignore[attr-defined]
    assert row is not None
    return row  # type: ignore[no-any-return]


async def set_job(nx: Nexus, job_id: str, sql: str, params: list[Any]) -> None:
    async with nx.db.transaction() as conn:
        await conn.execute(f"UPDATE kernel_job SET {sql} WHERE id = ?", [*params, job_id])


# -- the queue -----------------------------------------------------------------------------


async def test_enqueue_and_run(client: httpx.AsyncClient, nx: Nexus, queue: JobQueue) -> None:
    owner = await new_org(client, nx)
    name = f"test.echo.{tok()}"
    seen: list[tuple[JobContext, dict[str, Any]]] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen.append((ctx, payload))

    queue.register(name, handler)
    job_id = await queue.enqueue(name, {"n": 1, "when": utcnow()}, org_id=owner.org_id)
    row = await job(nx, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["org_id"] == owner.org_id
    assert await JobRunner(queue).run_once() == 1
    [(ctx, payload)] = seen
    assert payload["n"] == 1 and isinstance(payload["when"], str)
    assert (ctx.id, ctx.name, ctx.org_id, ctx.attempt, ctx.max_attempts) == (job_id, name, owner.org_id, 1, 5)
    row = await job(nx, job_id)
    assert row["status"] == "done" and row["attempts"] == 1 and row["finished_at"] is not None
    assert row["locked_by"] is None and row["started_at"] is not None
    assert await JobRunner(queue).run_once() == 0
    with pytest.raises(ValueError):
        await queue.enqueue("no.such.job", {}, org_id=owner.org_id)
    with pytest.raises(TypeError):
        await queue.enqueue(name, {"x": object()}, org_id=owner.org_id)


async def test_enqueue_in_commits_with_the_change(client: httpx.AsyncClient, nx: Nexus, queue: JobQueue) -> None:
    owner = await new_org(client, nx)
    name = f"test.atomic.{tok()}"
    ran: list[dict[str, Any]] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        async with ctx.uow() as uow:  # the job acts in its org, as the system
            assert uow.ctx.org_id == owner.org_id and uow.ctx.principal.kind == "system"
        ran.append(payload)

    queue.register(name, handler)
    ctx = system_context(owner.org_id)
    with pytest.raises(RuntimeError):
        async with UnitOfWork(nx.db, ctx) as uow:
            await queue.enqueue_in(uow, name, {"kept": False})
            raise RuntimeError("the change fails")
    async with UnitOfWork(nx.db, ctx) as uow:
        kept = await queue.enqueue_in(uow, name, {"kept": True})
        uniq = await queue.enqueue_in(uow, name, {"kept": True}, unique_key="u1")
        assert await queue.enqueue_in(uow, name, {"kept": True}, unique_key="u1") == uniq
    async with nx.db.reader() as conn:
        rows = await conn.fetch("SELECT id, org_id FROM kernel_job WHERE name = ? ORDER BY id", [name])
    assert [r[0] for r in rows] == sorted([kept, uniq]) and {r[1] for r in rows} == {owner.org_id}
    runner = JobRunner(queue)
    assert await runner.run_once() == 2
    assert ran == [{"kept": True}, {"kept": True}]


async def test_in_process_worker_runs_jobs(client: httpx.AsyncClient, nx: Nexus) -> None:
    """`nexus serve` (here the test app) runs a worker in-process: nothing to drive by hand."""
    owner = await new_org(client, nx)
    name = f"test.inproc.{tok()}"
    done = asyncio.Event()

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        done.set()

    nx.jobs.register(name, handler)  # type: ignore[attr-defined]
    job_id = await nx.jobs.enqueue(name, {}, org_id=owner.org_id)  # type: ignore[attr-defined]
    await asyncio.wait_for(done.wait(), 10)

    async def finished() -> bool:
        return (await job(nx, job_id))["status"] == "done"

    await wait_for(finished)


async def test_priorities_then_due_time(nx: Nexus, queue: JobQueue) -> None:
    name = f"test.prio.{tok()}"
    order: list[str] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        order.append(payload["label"])

    queue.register(name, handler)
    org = "ORG" + tok()
    await queue.enqueue(name, {"label": "low"}, org_id=org)
    await queue.enqueue(name, {"label": "later"}, org_id=org, priority=100, run_at=utcnow() + timedelta(hours=1))
    await queue.enqueue(name, {"label": "high"}, org_id=org, priority=10)
    await queue.enqueue(name, {"label": "low2"}, org_id=org)
    await queue.enqueue(name, {"label": "mid"}, org_id=org, priority=5)
    runner = JobRunner(queue, concurrency=1)
    while await runner.run_once():
        pass
    assert order == ["high", "mid", "low", "low2"]  # "later" is not due
    with pytest.raises(ValueError):
        await queue.enqueue(name, {}, org_id=org, priority=10_000)


async def test_retry_with_backoff_then_success(nx: Nexus, queue: JobQueue) -> None:
    name = f"test.flaky.{tok()}"
    attempts: list[int] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError(f"downstream is down ({ctx.attempt})")

    queue.register(name, handler, max_attempts=5)
    job_id = await queue.enqueue(name, {}, org_id="ORG" + tok())
    runner = JobRunner(queue)
    queue.backoff_base = 2.0
    before = utcnow()
    assert await runner.run_once() == 1
    row = await job(nx, job_id)
    assert row["status"] == "queued" and row["attempts"] == 1 and "downstream is down (1)" in row["last_error"]
    delay = (nx.db.read_ts(row["run_at"]) - before).total_seconds()  # type: ignore[operator]
    assert 1.0 <= delay <= 2.5  # base 2 s, at most halved by jitter
    assert await runner.run_once() == 0  # not due yet: backing off
    queue.backoff_base = 0.05
    await set_job(nx, job_id, "run_at = ?", [nx.db.ts(utcnow())])

    async def finished() -> bool:
        await runner.run_once()
        return (await job(nx, job_id))["status"] == "done"

    await wait_for(finished, 10)
    row = await job(nx, job_id)
    assert attempts == [1, 2, 3] and row["attempts"] == 3
    assert "(2)" in row["last_error"]  # the last failure stays visible
    # Exponential: each retry waits about twice as long, never more than the cap.
    queue.backoff_base, queue.backoff_max = 1.0, 5.0
    assert 0.5 <= queue.backoff(1) <= 1.0 and 2.0 <= queue.backoff(3) <= 4.0 and queue.backoff(30) <= 5.0


async def test_dead_letter_after_max_attempts(nx: Nexus, queue: JobQueue) -> None:
    always, permanent, slow = (f"test.{kind}.{tok()}" for kind in ("always", "permanent", "slow"))

    async def fail(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise ValueError("poison payload")

    async def refuse(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise JobFailed("the invoice no longer exists")

    async def hang(ctx: JobContext, payload: dict[str, Any]) -> None:
        await asyncio.sleep(5)

    queue.register(always, fail, max_attempts=3)
    queue.register(permanent, refuse)
    queue.register(slow, hang, max_attempts=1, timeout=0.05)
    org = "ORG" + tok()
    dead_id = await queue.enqueue(always, {}, org_id=org)
    failed_id = await queue.enqueue(permanent, {}, org_id=org)
    slow_id = await queue.enqueue(slow, {}, org_id=org)
    runner = JobRunner(queue)

    async def settled() -> bool:
        await runner.run_once()
        rows = [await job(nx, i) for i in (dead_id, failed_id, slow_id)]
        return all(r["status"] in ("dead", "failed") for r in rows)

    await wait_for(settled, 10)
    dead, failed, timed_out = [await job(nx, i) for i in (dead_id, failed_id, slow_id)]
    assert dead["status"] == "dead" and dead["attempts"] == 3 and "ValueError: poison payload" in dead["last_error"]
    assert failed["status"] == "failed" and failed["attempts"] == 1 and "no longer exists" in failed["last_error"]
    assert timed_out["status"] == "dead" and "longer than 0.05 s" in timed_out["last_error"]
    assert dead["finished_at"] is not None and dead["locked_by"] is None
    assert await runner.run_once() == 0  # dead letters stay put


async def test_unique_jobs(nx: Nexus, queue: JobQueue) -> None:
    name, other = f"test.unique.{tok()}", f"test.unique2.{tok()}"

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    queue.register(name, handler)
    queue.register(other, handler)
    org = "ORG" + tok()
    first = await queue.enqueue(name, {"v": 1}, org_id=org, unique_key="contact:1")
    assert await queue.enqueue(name, {"v": 2}, org_id=org, unique_key="contact:1") == first
    assert await queue.enqueue(name, {}, org_id=org, unique_key="contact:2") != first
    assert await queue.enqueue(other, {}, org_id=org, unique_key="contact:1") != first  # keys are per job name
    # Running still counts as waiting.
    runner = JobRunner(queue, concurrency=10)
    claimed = await runner._cycle(10)
    assert first in {c.id for c in claimed}
    assert await queue.enqueue(name, {}, org_id=org, unique_key="contact:1") == first
    for c in claimed:
        runner._spawn(c)
    await asyncio.wait(list(runner.running.values()))
    await runner._cycle(0)
    assert (await job(nx, first))["status"] == "done"
    again = await queue.enqueue(name, {}, org_id=org, unique_key="contact:1")
    assert again != first
    # Many concurrent enqueues of one key make one job.
    ids = await asyncio.gather(*(queue.enqueue(name, {}, org_id=org, unique_key="burst") for _ in range(20)))
    assert len(set(ids)) == 1


async def test_visibility_timeout_recovers_a_crashed_workers_job(nx: Nexus, queue: JobQueue) -> None:
    name, once = f"test.crash.{tok()}", f"test.crash-once.{tok()}"
    ran: list[int] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(ctx.attempt)

    queue.register(name, handler)
    queue.register(once, handler, max_attempts=1)
    org = "ORG" + tok()
    job_id = await queue.enqueue(name, {}, org_id=org)
    last_chance = await queue.enqueue(once, {}, org_id=org)
    crashed = JobRunner(queue, holder="crashed-worker")
    assert {c.id for c in await crashed._cycle(10)} == {job_id, last_chance}  # claimed, then the process dies
    row = await job(nx, job_id)
    assert row["status"] == "running" and row["locked_by"] == "crashed-worker"
    survivor = JobRunner(queue)
    assert await survivor.run_once() == 0  # the claim still holds
    past = nx.db.ts(utcnow() - timedelta(seconds=1))
    await set_job(nx, job_id, "locked_until = ?", [past])
    await set_job(nx, last_chance, "locked_until = ?", [past])
    assert await survivor.run_once() == 1
    row = await job(nx, job_id)
    assert row["status"] == "done" and row["attempts"] == 2 and ran == [2]
    assert "visibility timeout" in row["last_error"]
    gone = await job(nx, last_chance)  # its one attempt was the one that died with the worker
    assert gone["status"] == "dead" and gone["attempts"] == 1


async def test_worker_renews_its_claim_and_stops_a_cancelled_job(client: httpx.AsyncClient, nx: Nexus,
                                                                 queue: JobQueue) -> None:
    owner = await new_org(client, nx)
    name = f"test.long.{tok()}"
    started = asyncio.Event()
    outcome: list[str] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    queue.register(name, handler)
    queue.visibility = 1.2  # renewed every 0.4 s
    runner = JobRunner(queue)
    await runner.start()
    try:
        job_id = await queue.enqueue(name, {}, org_id=owner.org_id)
        await asyncio.wait_for(started.wait(), 10)
        first = nx.db.read_ts((await job(nx, job_id))["locked_until"])
        await asyncio.sleep(0.9)
        row = await job(nx, job_id)
        assert row["status"] == "running" and nx.db.read_ts(row["locked_until"]) > first  # type: ignore[operator]
        r = await owner.post(f"/api/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"

        async def stopped() -> bool:
            return outcome == ["cancelled"]

        await wait_for(stopped, 5)
        await asyncio.sleep(0.1)
        assert (await job(nx, job_id))["status"] == "cancelled"
    finally:
        await runner.stop()


async def test_stop_returns_unfinished_jobs_to_the_queue(nx: Nexus, queue: JobQueue) -> None:
    name = f"test.shutdown.{tok()}"
    started = asyncio.Event()

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(30)

    queue.register(name, handler)
    runner = JobRunner(queue)
    await runner.start()
    job_id = await queue.enqueue(name, {}, org_id="ORG" + tok())
    await asyncio.wait_for(started.wait(), 10)
    await runner.stop(grace=0.1)
    row = await job(nx, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["locked_by"] is None


async def test_two_workers_run_each_job_once(nx: Nexus, queue: JobQueue) -> None:
    name = f"test.shared.{tok()}"
    runs: list[str] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        runs.append(ctx.id)
        await asyncio.sleep(0)

    queue.register(name, handler)
    org = "ORG" + tok()
    ids = [await queue.enqueue(name, {"i": i}, org_id=org) for i in range(60)]
    a, b = JobRunner(queue, concurrency=4), JobRunner(queue, concurrency=4)
    while sum(await asyncio.gather(a.run_once(), b.run_once())):
        pass
    assert sorted(runs) == sorted(ids)
    async with nx.db.reader() as conn:
        n = await conn.fetchval("SELECT count(*) FROM kernel_job WHERE name = ? AND status = 'done'", [name])
    assert n == 60


# -- schedules -------------------------------------------------------------------------------


async def test_cron_schedule_fires_once_across_competing_workers(nx: Nexus) -> None:
    sched, name = f"test.cron.{tok()}", f"test.cron-job.{tok()}"
    ran: list[dict[str, Any]] = []

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(payload)

    queues = []
    for _ in range(2):  # two processes that declare the same schedule
        q = JobQueue(nx.db)
        q.register(name, handler)
        q.schedule(sched, "*/5 * * * *", name, {"report": "daily"}, org_id="ORG1")
        await q.sync_schedules()
        queues.append(q)
    with pytest.raises(ValueError):
        queues[0].schedule("bad", "every tuesday", name)

    async def schedule_row() -> tuple[Any, ...]:
        async with nx.db.reader() as conn:
            row = await conn.fetchrow("SELECT next_run_at, last_run_at FROM kernel_schedule WHERE name = ?", [sched])
        assert row is not None
        return tuple(nx.db.read_ts(v) for v in row)

    async def job_count() -> int:
        async with nx.db.reader() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM kernel_job WHERE name = ?", [name]))

    nxt, last = await schedule_row()
    assert last is None and nxt > utcnow() and nxt.minute % 5 == 0 and nxt.second == 0
    # Nothing is due yet.
    assert sum(await asyncio.gather(*(q.tick_schedules() for q in queues))) == 0
    rounds = 8
    for i in range(rounds):
        async with nx.db.transaction() as conn:
            await conn.execute("UPDATE kernel_schedule SET next_run_at = ? WHERE name = ?",
                               [nx.db.ts(utcnow() - timedelta(minutes=1)), sched])
        # Both workers see the tick; the compare-and-set lets one of them (or the app's own
        # in-process worker, a third competitor) enqueue it.
        await asyncio.gather(*(q.tick_schedules() for q in queues), *(q.tick_schedules() for q in queues))
        assert await job_count() == i + 1
        runner = JobRunner(queues[i % 2])
        assert await runner.run_once() == 1
    assert ran == [{"report": "daily"}] * rounds
    nxt, last = await schedule_row()
    assert last is not None and nxt > utcnow()
    assert nxt == next_run("*/5 * * * *", last)
    # A tick while the previous run still waits is skipped (no pile-up behind a stopped worker).
    for _ in range(2):
        async with nx.db.transaction() as conn:
            await conn.execute("UPDATE kernel_schedule SET next_run_at = ? WHERE name = ?",
                               [nx.db.ts(utcnow() - timedelta(minutes=1)), sched])
        await queues[0].tick_schedules()
    assert await job_count() == rounds + 1
    # Redeclaring with another cron expression restarts the clock; the same one keeps it.
    q = JobQueue(nx.db)
    q.schedule(sched, "0 3 * * *", name, {"report": "daily"}, org_id="ORG1")
    await q.sync_schedules()
    nxt, _ = await schedule_row()
    assert (nxt.hour, nxt.minute) == (3, 0)


# -- admin API -------------------------------------------------------------------------------


async def _parked(nx: Nexus, actor: Actor, **kw: Any) -> str:
    """A job of the actor's org that waits a day (the in-process worker leaves it alone)."""
    return await nx.jobs.enqueue("kernel.noop", {"for": actor.email}, org_id=actor.org_id,  # type: ignore[attr-defined,no-any-return]
                                 run_at=utcnow() + timedelta(days=1), **kw)


async def test_admin_api_lists_cancels_and_retries(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    waiting = await _parked(nx, owner)
    doomed = await _parked(nx, owner)
    await set_job(nx, doomed, "status = 'dead', attempts = max_attempts, last_error = 'boom', finished_at = ?",
                  [nx.db.ts(utcnow())])
    r = await owner.get("/api/v1/jobs")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [j["id"] for j in body["items"]] == [doomed, waiting] and body["next_cursor"] is None
    assert body["items"][1]["payload"] == {"for": owner.email}
    r = await owner.get("/api/v1/jobs", params={"status": "dead"})
    assert [j["id"] for j in r.json()["items"]] == [doomed]
    r = await owner.get("/api/v1/jobs", params={"name": "kernel.noop", "limit": 1})
    assert len(r.json()["items"]) == 1 and r.json()["next_cursor"]
    r2 = await owner.get("/api/v1/jobs", params={"name": "kernel.noop", "limit": 1, "cursor": r.json()["next_cursor"]})
    assert [j["id"] for j in r2.json()["items"]] == [waiting]
    assert (await owner.get("/api/v1/jobs", params={"bogus": "1"})).status_code == 400
    assert (await owner.get(f"/api/v1/jobs/{waiting}")).json()["status"] == "queued"

    r = await owner.post(f"/api/v1/jobs/{waiting}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["finished_at"]
    r = await owner.post(f"/api/v1/jobs/{waiting}/cancel")
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    r = await owner.post(f"/api/v1/jobs/{doomed}/retry")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "queued" and r.json()["attempts"] == 0 and r.json()["finished_at"] is None
    assert (await owner.post(f"/api/v1/jobs/{doomed}/retry")).status_code == 409  # queued (or done): refused

    async def retried_job_ran() -> bool:
        return (await job(nx, doomed))["status"] == "done"

    await wait_for(retried_job_ran)  # the in-process worker picked it up
    assert (await owner.post(f"/api/v1/jobs/{doomed}/retry")).status_code == 409
    # Retrying a job whose unique key is taken by a waiting twin is refused.
    twins = [await _parked(nx, owner, unique_key=f"k-{tok()}")]
    await set_job(nx, twins[0], "status = 'dead'", [])
    twins.append(await _parked(nx, owner, unique_key=(await job(nx, twins[0]))["unique_key"]))
    assert twins[1] != twins[0]
    r = await owner.post(f"/api/v1/jobs/{twins[0]}/retry")
    assert r.status_code == 409 and "unique key" in r.json()["detail"]
    assert (await job(nx, twins[0]))["status"] == "dead"
    actions = [(a["record_id"], a["action"]) for a in await audit_rows(nx, owner.org_id, resource="queue")]
    assert (waiting, "cancel") in actions and (doomed, "retry") in actions
    assert (await owner.get("/api/v1/jobs/NOPE")).status_code == 404


async def test_admin_api_permissions_and_tenancy(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    stranger = await new_org(client, nx)
    job_id = await _parked(nx, owner)
    # A member's `*.*.read` does not reach the jobs queue.
    for method, path in (("GET", "/api/v1/jobs"), ("GET", f"/api/v1/jobs/{job_id}"),
                         ("GET", "/api/v1/jobs/schedules"), ("POST", f"/api/v1/jobs/{job_id}/cancel"),
                         ("POST", f"/api/v1/jobs/{job_id}/retry")):
        r = await member.request(method, path)
        assert r.status_code == 403, (method, path, r.text)
    # Another org's owner does not learn the job exists.
    assert (await stranger.get("/api/v1/jobs")).json()["items"] == []
    for method, path in (("GET", f"/api/v1/jobs/{job_id}"), ("POST", f"/api/v1/jobs/{job_id}/cancel"),
                         ("POST", f"/api/v1/jobs/{job_id}/retry")):
        r = await stranger.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
    assert (await job(nx, job_id))["status"] == "queued"
    # A role that names the permission reaches it.
    role = await make_role(owner, ["jobs.queue.read"], name=f"ops-{tok()}")
    ops = await owner.add_user([role["name"]])
    assert [j["id"] for j in (await ops.get("/api/v1/jobs")).json()["items"]] == [job_id]
    assert (await ops.post(f"/api/v1/jobs/{job_id}/cancel")).status_code == 403
    assert (await client.get("/api/v1/jobs")).status_code == 401


async def test_schedules_are_listed(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await owner.get("/api/v1/jobs/schedules")
    assert r.status_code == 200, r.text
    items = {s["name"]: s for s in r.json()["items"]}
    cleanup = items["kernel.cleanup"]
    assert cleanup["cron"] == "17 * * * *" and cleanup["job_name"] == "kernel.cleanup"
    assert cleanup["org_id"] is None and cleanup["payload"] is None and cleanup["next_run_at"]
    assert not [s for s in items.values() if s["org_id"] not in (None, owner.org_id)]


async def test_metrics_helpers_and_cleanup(nx: Nexus, queue: JobQueue) -> None:
    name = f"test.metrics.{tok()}"

    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    queue.register(name, handler)
    org = "ORG" + tok()
    old = await queue.enqueue(name, {}, org_id=org, run_at=utcnow() - timedelta(seconds=30))
    assert await queue.queue_depth() >= 1 and await queue.oldest_queued_age() >= 29
    assert (await queue.counts())["queued"] >= 1
    await set_job(nx, old, "status = 'done', finished_at = ?", [nx.db.ts(utcnow() - timedelta(days=8))])
    recent_dead = await queue.enqueue(name, {}, org_id=org)
    await set_job(nx, recent_dead, "status = 'dead', finished_at = ?", [nx.db.ts(utcnow() - timedelta(days=8))])
    removed = await queue.cleanup()
    assert removed["done_jobs"] >= 1
    assert await queue.get(old, org_id=None) is None and await queue.get(recent_dead, org_id=None) is not None


def test_worker_mode_setting() -> None:
    base = {"NEXUS_SECRET_KEY": "x" * 40, "NEXUS_DATA_DIR": tempfile.gettempdir()}
    assert Settings.from_env(base).worker_mode == "inprocess"
    assert Settings.from_env({**base, "NEXUS_WORKER": "external"}).worker_mode == "external"
    with pytest.raises(ConfigError, match="NEXUS_WORKER"):
        Settings.from_env({**base, "NEXUS_WORKER": "sometimes"})


# -- `nexus worker` as its own process ----------------------------------------------------------


@pytest_asyncio.fixture
async def fresh(backend: str) -> AsyncIterator[Settings]:
    """A database of its own, so that no other worker of the test session competes."""
    data_dir = Path(tempfile.mkdtemp(prefix="nexus-jobs-"))
    db_name = f"nexus_jobs_{os.getpid()}_{tok()}" if backend == "postgresql" else None
    if db_name:
        await _pg_admin(f'CREATE DATABASE "{db_name}"')
    s = make_settings(backend, data_dir, db_name)
    await asyncio.to_thread(migrate.upgrade, s)
    yield s
    shutil.rmtree(data_dir, ignore_errors=True)
    if db_name:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


async def test_nexus_worker_runs_jobs_the_api_process_enqueued(fresh: Settings) -> None:
    import dataclasses

    api = Nexus(dataclasses.replace(fresh, worker_mode="external"))  # `nexus serve` with NEXUS_WORKER=external
    await api.startup()
    try:
        assert api.jobs.runners == []  # type: ignore[attr-defined]  # no worker in the API process
        db = api.db
        now = utcnow()
        async with db.transaction() as conn:
            for key, age in (("old", timedelta(hours=30)), ("new", timedelta(hours=1))):
                await conn.execute(
                    "INSERT INTO kernel_idempotency (org_id, principal_id, key, request_hash, status, headers, body,"
                    " created_at, method_path) VALUES (?,?,?,?,?,?,?,?,?)",
                    ["ORG1", "USER1", key, "h", 201, db.json({}), b"{}", db.ts(now - age), "POST /x"])
        noop = await api.jobs.enqueue("kernel.noop", {}, org_id="ORG1")  # type: ignore[attr-defined]
        cleanup = await api.jobs.enqueue("kernel.cleanup", {}, org_id=None)  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)
        assert (await api.jobs.get(noop, org_id=None))["status"] == "queued"  # type: ignore[attr-defined]

        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
        env.update({"NEXUS_DATA_DIR": str(fresh.data_dir), "NEXUS_SECRET_KEY": fresh.secret_key,
                    "NEXUS_LOG_LEVEL": "WARNING", "NEXUS_WORKER": "external"})
        if fresh.dialect == "postgresql":
            env["NEXUS_DATABASE_URL"] = fresh.database_url
        proc = subprocess.Popen([NEXUS, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            async def both_done() -> bool:
                rows = [await api.jobs.get(i, org_id=None) for i in (noop, cleanup)]  # type: ignore[attr-defined]
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                return all(r["status"] == "done" for r in rows)

            await wait_for(both_done, 60)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0, out
        assert "nexus worker: running" in out and "kernel.cleanup" in out
        async with db.reader() as conn:
            keys = [r[0] for r in await conn.fetch("SELECT key FROM kernel_idempotency")]
        assert keys == ["new"]  # kernel.cleanup removed the one older than 24 h
    finally:
        await api.shutdown()
