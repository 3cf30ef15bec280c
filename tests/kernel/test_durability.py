"""A crash loses no acknowledged write: kill -9 the server during a burst of concurrent
creates, restart it, and find every record whose create was answered 201, with its audit
entry and outbox event — and that event delivered at least once (dispatched, and consumed by an
in-process subscriber) within 30 s of the restart."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from nexus.kernel.config import Settings
from nexus.kernel.db import create_database
from tests.conftest import BACKENDS, PG_ADMIN_URL, _pg_admin
from tests.kernel.test_serve import NEXUS, env_for, free_port, wait_ready

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("db", BACKENDS)
async def test_kill_9_during_write_burst_loses_no_acknowledged_write(db: str, tmp_path: Path) -> None:
    extra = {"NEXUS_ADMIN_EMAIL": "crash@test.io", "NEXUS_ADMIN_PASSWORD": "crash-test-pw"}
    db_name = None
    if db == "postgresql":
        db_name = f"nexus_crash_{secrets.token_hex(4)}"
        await _pg_admin(f'CREATE DATABASE "{db_name}"')
        extra["NEXUS_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    env = env_for(tmp_path, **extra)
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen([NEXUS, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        wait_ready(url, proc)
        return proc

    proc = start()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            tok = (await c.post("/api/v1/auth/token", data={"grant_type": "password", "username": "crash@test.io",
                                                             "password": "crash-test-pw"})).json()["access_token"]
            h = {"Authorization": f"Bearer {tok}"}
            acked: list[str] = []
            sem = asyncio.Semaphore(32)
            killed = asyncio.Event()

            async def one(i: int) -> None:
                async with sem:
                    if killed.is_set():
                        return
                    try:
                        r = await c.post("/api/v1/tasks/tasks", json={"title": f"burst {i}"}, headers=h)
                    except httpx.HTTPError:
                        return
                    if r.status_code == 201:
                        acked.append(r.json()["id"])
                        if len(acked) == 300:
                            os.killpg(proc.pid, signal.SIGKILL)
                            killed.set()

            await asyncio.gather(*[one(i) for i in range(1000)])
            proc.wait(10)
            assert len(acked) >= 300
            proc = start()
            tok = (await c.post("/api/v1/auth/token", data={"grant_type": "password", "username": "crash@test.io",
                                                             "password": "crash-test-pw"})).json()["access_token"]
            h = {"Authorization": f"Bearer {tok}"}
            found: set[str] = set()
            cursor = None
            while True:
                params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
                page = (await c.get("/api/v1/tasks/tasks", params=params, headers=h)).json()
                found |= {t["id"] for t in page["items"]}
                cursor = page["next_cursor"]
                if not cursor:
                    break
            missing = set(acked) - found
            assert not missing, f"{len(missing)} acknowledged writes lost"
        database = create_database(Settings.from_env(env))
        await database.open()
        try:
            async with database.reader() as conn:
                events = {r[0] for r in await conn.fetch(
                    "SELECT subject FROM kernel_outbox WHERE type = 'nexus.tasks.task.created'")}
                audited = {r[0] for r in await conn.fetch(
                    "SELECT record_id FROM kernel_audit WHERE app = 'tasks' AND action = 'created'")}
            assert set(acked) <= events and set(acked) <= audited
            # and nothing unacknowledged is half-written: every task has both, or neither exists
            assert found == events & found == audited & found
            # ...and its event is delivered at least once: the restarted server's dispatcher
            # marks it dispatched and a consumer (the webhooks fan-out, which
            # takes every nexus.* event) has consumed it.
            deadline = time.monotonic() + 30
            while True:
                async with database.reader() as conn:
                    dispatched = {r[0] for r in await conn.fetch(
                        "SELECT subject FROM kernel_outbox WHERE type = 'nexus.tasks.task.created'"
                        " AND dispatched_at IS NOT NULL AND error IS NULL")}
                    delivered = {r[0] for r in await conn.fetch(
                        "SELECT o.subject FROM kernel_outbox o JOIN kernel_event_consumption c ON c.event_id = o.id"
                        " WHERE o.type = 'nexus.tasks.task.created' AND c.consumer = 'kernel.webhooks'")}
                if set(acked) <= dispatched & delivered or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        finally:
            await database.close()
        assert not set(acked) - dispatched, f"{len(set(acked) - dispatched)} acknowledged writes' events not dispatched"
        assert not set(acked) - delivered, f"{len(set(acked) - delivered)} acknowledged writes' events not delivered"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        if db_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
