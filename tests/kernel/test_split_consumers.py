"""Split deployment: each process consumes the events of the apps it hosts, whoever dispatches."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx

from nexus.kernel import migrate
from nexus.kernel.http.app import Nexus
from tests.conftest import _pg_admin, make_settings
from tests.factories import new_org


async def test_notes_are_indexed_when_the_tasks_process_dispatches(backend: str) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="nexus-split-"))
    db_name = None
    if backend == "postgresql":
        db_name = f"nexus_split_{os.getpid()}_{secrets.token_hex(4)}"
        await _pg_admin(f'CREATE DATABASE "{db_name}"')
    settings = make_settings(backend, data_dir, db_name)
    await asyncio.to_thread(migrate.upgrade, settings)
    tasks_nx = Nexus(settings, ["tasks"])
    notes_nx = Nexus(settings, ["notes", "identity"])  # identity: to sign in
    try:
        await tasks_nx.startup()  # first: it takes the dispatch lease
        assert await tasks_nx.events.acquire_lease("outbox")
        await notes_nx.startup()
        assert not await notes_nx.events.acquire_lease("outbox")
        assert not any(s.name == "kernel.search:notes.note" for s in tasks_nx.events.subscribers)
        transport = httpx.ASGITransport(app=notes_nx, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://nexus.test") as client:
            owner = await new_org(client, notes_nx)
            r = await owner.post("/api/v1/notes/notes", json={"title": "Quokka migration notes", "body": "hello"})
            assert r.status_code == 201, r.text
            deadline = asyncio.get_running_loop().time() + 60  # generous: a loaded CI box
            items: list[Any] = []
            while asyncio.get_running_loop().time() < deadline:
                got = await owner.get("/api/v1/search", params={"q": "quokka"})
                assert got.status_code == 200, got.text
                items = got.json()["items"]
                if items:
                    break
                await asyncio.sleep(0.1)
            assert [i["id"] for i in items] == [r.json()["id"]]
        async with tasks_nx.db.reader() as conn:
            dispatcher = await conn.fetchval("SELECT holder FROM kernel_lease WHERE name = 'outbox'")
        assert dispatcher == tasks_nx.events.holder
    finally:
        await notes_nx.shutdown()
        await tasks_nx.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
        if db_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
