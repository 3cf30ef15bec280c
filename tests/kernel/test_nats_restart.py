"""NATS restarted during the relay: no event lost, duplicates only.

A real `nexus serve` relays its outbox to a NATS JetStream server of the test's own (free port,
JetStream, file store in a temporary directory). While tasks are created through the HTTP API
the NATS server is killed with SIGKILL — twice — and started again on the same store. Every
created task's `nexus.tasks.task.created` event must then be in the stream (a duplicate is
allowed, a gap is not), and every outbox row must end dispatched.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from nexus.kernel.config import Settings
from nexus.kernel.db import create_database
from tests.conftest import BACKENDS, PG_ADMIN_URL, _pg_admin
from tests.kernel.test_serve import NEXUS, env_for, free_port, wait_ready

NATS_SERVER = "/usr/sbin/nats-server"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(NATS_SERVER), reason=f"{NATS_SERVER} is not installed"),
]

TASKS = 300
KILL_AT = (90, 190)  # acknowledged creates after which NATS is killed (and restarted)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class NatsServer:
    """A nats-server of the test's own: started, SIGKILLed and restarted on one store dir."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started: list[subprocess.Popen[bytes]] = []  # every one, so that none outlives the test

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.started.append(self.proc)
        deadline = time.monotonic() + 15
        while not _port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("nats-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)


@pytest.mark.parametrize("db", BACKENDS)
async def test_nats_killed_and_restarted_during_relay_loses_no_event(db: str, tmp_path: Path) -> None:
    import nats

    nats_server = NatsServer(tmp_path / "jetstream")
    nats_server.start()
    stream = f"NEXUSRESTART{secrets.token_hex(3).upper()}"
    extra = {"NEXUS_ADMIN_EMAIL": "relay@test.io", "NEXUS_ADMIN_PASSWORD": "relay-test-pw",
             "NEXUS_NATS_URL": nats_server.url, "NEXUS_NATS_STREAM": stream}
    db_name = None
    if db == "postgresql":
        db_name = f"nexus_natsrestart_{secrets.token_hex(4)}"
        await _pg_admin(f'CREATE DATABASE "{db_name}"')
        extra["NEXUS_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = env_for(data_dir, **extra)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([NEXUS, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        wait_ready(url, proc)
        async with httpx.AsyncClient(base_url=url, timeout=15) as c:
            tok = (await c.post("/api/v1/auth/token", data={"grant_type": "password", "username": "relay@test.io",
                                                             "password": "relay-test-pw"})).json()["access_token"]
            h = {"Authorization": f"Bearer {tok}"}
            created: list[str] = []
            sem = asyncio.Semaphore(8)
            restarts: list[asyncio.Task[None]] = []
            down = False
            during_outage = 0

            async def bounce() -> None:
                nonlocal down
                nats_server.kill()
                down = True
                await asyncio.sleep(1.5)  # the relay sees an outage, not just a blip
                nats_server.start()
                down = False

            async def one(i: int) -> None:
                nonlocal during_outage
                async with sem:
                    r = await c.post("/api/v1/tasks/tasks", json={"title": f"relayed {i}"}, headers=h)
                    assert r.status_code == 201, r.text
                    created.append(r.json()["id"])
                    during_outage += down
                    if len(created) in KILL_AT:
                        restarts.append(asyncio.create_task(bounce()))
                    await asyncio.sleep(0.04)  # spread the creates over the outages

            await asyncio.gather(*[one(i) for i in range(TASKS)])
            await asyncio.gather(*restarts)
            assert len(created) == TASKS and len(restarts) == len(KILL_AT)
            assert during_outage >= 20, "writes went on while NATS was down"

        # Every outbox row ends dispatched (the relay held the stream through the outages).
        database = create_database(Settings.from_env(env))
        await database.open()
        try:
            deadline = time.monotonic() + 40
            while True:
                async with database.reader() as conn:
                    pending = int(await conn.fetchval(
                        "SELECT count(*) FROM kernel_outbox WHERE dispatched_at IS NULL") or 0)
                    dead = int(await conn.fetchval(
                        "SELECT count(*) FROM kernel_outbox WHERE error IS NOT NULL") or 0)
                if pending == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            async with database.reader() as conn:
                outbox = {r[0] for r in await conn.fetch(
                    "SELECT id FROM kernel_outbox WHERE type = 'nexus.tasks.task.created'")}
        finally:
            await database.close()
        assert pending == 0, f"{pending} outbox rows still undispatched"
        assert dead == 0, "a NATS outage must not dead-letter events"

        # Every created task's event is in the stream: duplicates allowed, no loss.
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(f"{stream.lower()}.nexus.tasks.task.created", durable=None, stream=stream)
            seen: Counter[str] = Counter()
            event_ids: set[str] = set()
            deadline = time.monotonic() + 20
            while not set(created) <= set(seen) and time.monotonic() < deadline:
                try:
                    for m in await sub.fetch(200, timeout=1):
                        ev = json.loads(m.data)
                        assert ev["type"] == "nexus.tasks.task.created"
                        seen[ev["subject"]] += 1
                        event_ids.add(ev["id"])
                        await m.ack()
                except nats.errors.TimeoutError:
                    pass
        finally:
            await nc.close()
        missing = set(created) - set(seen)
        assert not missing, f"{len(missing)} of {TASKS} task.created events lost across NATS restarts"
        assert outbox <= event_ids, "every outbox event of the kind was relayed"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        nats_server.stop()
        if db_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
