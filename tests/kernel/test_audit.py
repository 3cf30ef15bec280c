"""The audit trail is hash-chained: edits and deletions of sealed entries are detected."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from nexus.kernel.audit import seal_once, verify
from nexus.kernel.http.app import Nexus
from tests.factories import make_task, new_org
from tests.kernel.test_serve import NEXUS, env_for


async def _seal_all(nx: Nexus) -> None:
    while await seal_once(nx.db):
        pass


async def test_chain_verifies_then_detects_tampering(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    task = await make_task(owner, title="audited")
    await owner.patch(f"/api/v1/tasks/tasks/{task['id']}", json={"title": "audited again"})
    await _seal_all(nx)
    result = await verify(nx.db)
    assert result.ok and result.checked >= 2, result
    async with nx.db.reader() as conn:
        seq, entry_id = await conn.fetchrow(
            "SELECT seq, id FROM kernel_audit WHERE record_id = ? AND action = 'updated'", [task["id"]])
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE kernel_audit SET actor_id = 'someone-else' WHERE id = ?", [entry_id])
    result = await verify(nx.db)
    assert not result.ok and result.seq == seq and "altered" in (result.problem or "")
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE kernel_audit SET actor_id = ? WHERE id = ?", [owner.user_id, entry_id])
    assert (await verify(nx.db)).ok
    async with nx.db.transaction() as conn:
        row = await conn.fetchrow("SELECT * FROM kernel_audit WHERE id = ?", [entry_id])
        await conn.execute("DELETE FROM kernel_audit WHERE id = ?", [entry_id])
    result = await verify(nx.db)
    assert not result.ok and ("missing" in (result.problem or "") or "removed" in (result.problem or ""))
    # Put it back exactly as it was, so the shared test database stays verifiable.
    async with nx.db.transaction() as conn:
        await conn.execute(f"INSERT INTO kernel_audit VALUES ({','.join('?' * len(row))})", list(row))
    assert (await verify(nx.db)).ok


def test_cli_verify(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    subprocess.run([NEXUS, "admin", "create", "--email", "a@b.io", "--password", "long-password"], env=env,
                   check=True, capture_output=True, timeout=120)
    r = subprocess.run([NEXUS, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "intact" in r.stdout, r.stdout + r.stderr
    import sqlite3

    con = sqlite3.connect(tmp_path / "nexus.db")
    con.execute("UPDATE kernel_audit SET action = 'nothing happened' WHERE seq = 1")
    con.commit()
    con.close()
    r = subprocess.run([NEXUS, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "BROKEN" in r.stdout
