"""`nexus admin create` as an operator runs it (a subprocess on a fresh data dir), and the
first-start bootstrap that creates the first admin once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from nexus.apps.identity.cli import bootstrap
from nexus.kernel import migrate
from nexus.kernel.config import Settings
from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import utcnow

NEXUS = str(Path(sys.executable).parent / "nexus")


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env.update({"NEXUS_DATA_DIR": str(data_dir), "NEXUS_LOG_LEVEL": "WARNING", "NEXUS_PASSWORD_HASH": "fast",
                **extra})
    return env


def nexus(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NEXUS, *args], env=env_for(data_dir), capture_output=True, text=True, timeout=120)


def settings_for(data_dir: Path, **extra: str) -> Settings:
    return Settings.from_env({"NEXUS_DATA_DIR": str(data_dir), "NEXUS_LOG_LEVEL": "WARNING",
                              "NEXUS_RATE_LIMITS": "read=100000/60,write=100000/60,auth=100000/60,bulk=100000/60",
                              **extra})


@asynccontextmanager
async def served(data_dir: Path) -> AsyncIterator[tuple[Nexus, httpx.AsyncClient]]:
    """The installation in data_dir, served in process."""
    nx = Nexus(settings_for(data_dir), run_background=False)
    await nx.startup()
    try:
        transport = httpx.ASGITransport(app=nx, client=("192.0.2.10", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://nexus.test") as c:
            yield nx, c
    finally:
        await nx.shutdown()


async def sign_in(c: httpx.AsyncClient, email: str, password: str, org: str | None = None) -> httpx.Response:
    data = {"grant_type": "password", "username": email, "password": password}
    if org:
        data["org"] = org
    return await c.post("/api/v1/auth/token", data=data)


async def me(c: httpx.AsyncClient, token: str) -> dict:
    r = await c.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


# -- nexus admin create ---------------------------------------------------------------------


async def test_admin_create_makes_an_owner_and_the_org(tmp_path: Path) -> None:
    r = nexus(tmp_path, "migrate")
    assert r.returncode == 0, r.stderr
    r = nexus(tmp_path, "admin", "create", "--email", "Boss@Acme.Test", "--password", "s3cret-pass", "--org", "acme")
    assert r.returncode == 0, r.stderr
    assert "created admin boss@acme.test" in r.stdout and "'acme'" in r.stdout
    assert "s3cret-pass" not in r.stdout + r.stderr
    async with served(tmp_path) as (_nx, c):
        t = await sign_in(c, "boss@acme.test", "s3cret-pass", "acme")
        assert t.status_code == 200, t.text
        who = await me(c, t.json()["access_token"])
        assert who["roles"] == ["owner"] and who["permissions"] == ["*"]
        assert who["org"]["slug"] == "acme" and who["org"]["name"] == "Acme"
        roles = (await c.get("/api/v1/identity/roles",
                             headers={"Authorization": f"Bearer {t.json()['access_token']}"})).json()["items"]
        assert {"owner", "admin", "member", "viewer"} <= {r["name"] for r in roles}


async def test_admin_create_again_is_the_way_back_in(tmp_path: Path) -> None:
    # On a fresh data dir (no `nexus migrate` before): the command migrates first.
    assert nexus(tmp_path, "admin", "create", "--email", "boss@acme.test", "--password", "first-pass",
                 "--org", "acme").returncode == 0
    async with served(tmp_path) as (nx, c):
        t = (await sign_in(c, "boss@acme.test", "first-pass", "acme")).json()["access_token"]
        hdr = {"Authorization": f"Bearer {t}"}
        r = await c.post("/api/v1/identity/users", headers=hdr,
                         json={"email": "ops@acme.test", "name": "Ops", "password": "ops-password", "roles": ["viewer"]})
        assert r.status_code == 201, r.text
        ops_id = r.json()["id"]
        # Ops gets locked out and deactivated.
        async with nx.db.transaction() as conn:
            await conn.execute("UPDATE identity_user SET status = 'deactivated', failed_logins = 9, locked_until = ?"
                               " WHERE id = ?", [nx.db.ts(utcnow() + timedelta(hours=1)), ops_id])
    r = nexus(tmp_path, "admin", "create", "--email", "OPS@acme.test", "--password", "new-ops-pass", "--org", "acme")
    assert r.returncode == 0, r.stderr
    assert "updated admin ops@acme.test" in r.stdout
    r = nexus(tmp_path, "admin", "create", "--email", "boss@acme.test", "--password", "second-pass", "--org", "acme")
    assert r.returncode == 0 and "updated" in r.stdout
    async with served(tmp_path) as (nx, c):
        assert (await sign_in(c, "boss@acme.test", "first-pass", "acme")).status_code == 400
        t = await sign_in(c, "boss@acme.test", "second-pass", "acme")
        assert t.status_code == 200
        ops = await sign_in(c, "ops@acme.test", "new-ops-pass", "acme")
        assert ops.status_code == 200, ops.text
        who = await me(c, ops.json()["access_token"])
        assert who["roles"] == ["owner", "viewer"] and who["status"] == "active"
        hdr = {"Authorization": f"Bearer {t.json()['access_token']}"}
        listed = (await c.get("/api/v1/identity/users", headers=hdr)).json()["items"]
        assert len(listed) == 2
        ops_row = next(u for u in listed if u["email"] == "ops@acme.test")
        assert sorted(ops_row["roles"]) == ["owner", "viewer"]
        async with nx.db.reader() as conn:
            rows = await conn.fetch("SELECT action, after FROM kernel_audit WHERE record_id = ? ORDER BY at, id",
                                    [ops_id])
        assert "admin_reset" in [r[0] for r in rows]
        assert "password_hash" not in str([r[1] for r in rows])


BAD_INPUT = [
    (["--email", "boss@acme.test", "--password", "short"], "8 to 1024 characters"),
    (["--email", "boss@acme.test", "--password", "x" * 1025], "8 to 1024 characters"),
    (["--email", "not-an-email", "--password", "long-enough"], "not an email address"),
    (["--email", "boss@acme.test", "--password", "long-enough", "--org", "Bad Slug!"], "not an org slug"),
    (["--email", "boss@acme.test", "--password", "long-enough", "--org=-x"], "not an org slug"),
]


async def test_admin_create_refuses_bad_input(tmp_path: Path) -> None:
    for args, message in BAD_INPUT:
        r = nexus(tmp_path, "admin", "create", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    async with served(tmp_path) as (_nx, c):
        assert (await c.get("/api/v1/auth/status")).json() == {"initialised": False}


def test_admin_create_needs_its_arguments(tmp_path: Path) -> None:
    r = nexus(tmp_path, "admin", "create", "--email", "boss@acme.test")
    assert r.returncode == 2 and "--password" in r.stderr


# -- first start ------------------------------------------------------------------------------


async def test_bootstrap_creates_the_first_admin_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(tmp_path)
    migrate.upgrade(settings)
    await bootstrap(settings, "http://localhost:8000")
    out = capsys.readouterr().out
    email = re.search(r"email:\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    password = re.search(r"password:\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    assert email == "admin@example.com" and len(password) >= 12 and "generated" in out
    # Started again: nothing is created, and no password is shown.
    await bootstrap(settings, "http://localhost:8000")
    assert capsys.readouterr().out == ""
    async with served(tmp_path) as (nx, c):
        t = await sign_in(c, email, password)
        assert t.status_code == 200, t.text
        who = await me(c, t.json()["access_token"])
        assert who["roles"] == ["owner"] and who["org"]["slug"] == "default"
        async with nx.db.reader() as conn:
            assert await conn.fetchval("SELECT count(*) FROM identity_user") == 1
            assert await conn.fetchval("SELECT count(*) FROM identity_org") == 1
            stored = await conn.fetchval("SELECT password_hash FROM identity_user")
        assert stored.startswith("$argon2id$") and password not in stored


async def test_bootstrap_with_configured_admin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(tmp_path, NEXUS_ADMIN_EMAIL="Root@Corp.Test", NEXUS_ADMIN_PASSWORD="configured-pass")
    migrate.upgrade(settings)
    await bootstrap(settings, "http://localhost:8000")
    out = capsys.readouterr().out
    assert "root@corp.test" in out and "NEXUS_ADMIN_PASSWORD" in out
    assert "configured-pass" not in out
    async with served(tmp_path) as (_nx, c):
        assert (await sign_in(c, "root@corp.test", "configured-pass")).status_code == 200
        assert (await c.get("/api/v1/auth/status")).json() == {"initialised": True}


async def test_bootstrap_leaves_an_installation_with_an_org_alone(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert nexus(tmp_path, "admin", "create", "--email", "boss@acme.test", "--password", "s3cret-pass",
                 "--org", "acme").returncode == 0
    settings = settings_for(tmp_path, NEXUS_ADMIN_PASSWORD="another-pass")
    await bootstrap(settings, "http://localhost:8000")
    assert capsys.readouterr().out == ""
    async with served(tmp_path) as (_nx, c):
        assert (await sign_in(c, "admin@example.com", "another-pass")).status_code == 400
