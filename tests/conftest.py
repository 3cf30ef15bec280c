"""Test harness: every API test runs once on SQLite and once on the machine's PostgreSQL.

NEXUS_TEST_DATABASES chooses the back ends (default: sqlite,postgresql when PostgreSQL
answers). Each run gets a fresh PostgreSQL database, dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

os.environ.setdefault("NEXUS_PASSWORD_HASH", "fast")
os.environ.setdefault("NEXUS_LOG_LEVEL", "WARNING")

import httpx
import pytest
import pytest_asyncio

from nexus.kernel import migrate
from nexus.kernel.config import Settings
from nexus.kernel.http.app import Nexus

PG_ADMIN_URL = os.environ.get("NEXUS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _backends() -> list[str]:
    raw = os.environ.get("NEXUS_TEST_DATABASES")
    if raw:
        return [b.strip() for b in raw.split(",") if b.strip()]
    return ["sqlite", "postgresql"] if _pg_up() else ["sqlite"]


BACKENDS = _backends()


async def _pg_admin(sql: str) -> None:
    import asyncpg

    con = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await con.execute(sql)
    finally:
        await con.close()


def make_settings(backend: str, data_dir: Path, db_name: str | None = None) -> Settings:
    env = {
        "NEXUS_DATA_DIR": str(data_dir),
        "NEXUS_SECRET_KEY": secrets.token_urlsafe(48),
        "NEXUS_LOG_LEVEL": "WARNING",
        "NEXUS_MAX_IMPORT_ROWS": "2000",
        "NEXUS_MAX_IMPORT_BYTES": "2000000",
        # The whole suite shares one client address and a few users: limits it never reaches
        # (tests/kernel/test_ratelimit.py makes its own NEXUS with tight ones).
        "NEXUS_RATE_LIMITS": "read=1000000/60,write=1000000/60,auth=1000000/60,bulk=1000000/60",
    }
    if backend == "postgresql":
        assert db_name
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        env["NEXUS_DATABASE_URL"] = f"{base}/{db_name}"
    return Settings.from_env(env)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def settings(backend: str) -> AsyncIterator[Settings]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"nexus-test-{backend}-"))
    db_name = None
    if backend == "postgresql":
        db_name = f"nexus_test_{os.getpid()}_{secrets.token_hex(4)}"
        await _pg_admin(f'CREATE DATABASE "{db_name}"')
    s = make_settings(backend, data_dir, db_name)
    await asyncio.to_thread(migrate.upgrade, s)
    yield s
    shutil.rmtree(data_dir, ignore_errors=True)
    if db_name:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def nx(settings: Settings) -> AsyncIterator[Nexus]:
    app = Nexus(settings)
    await app.startup()
    yield app
    await app.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(nx: Nexus) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=nx, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://nexus.test") as c:
        yield c
