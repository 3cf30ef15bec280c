"""The audit trail's tamper evidence: a hash chain sealed in the background.

Writers append audit entries inside their own transactions without coordinating (a
chain computed at write time would serialise every write in the system). One process at
a time — holding the `audit-sealer` lease — takes unsealed entries in id order, numbers
them (`seq`) and sets `hash = sha256(previous hash ‖ canonical entry)`. `nexus audit
verify` walks the chain: an edited entry, a deleted entry or a reordered one breaks it.
Entries younger than a sealing round (well under a second) are not yet covered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from nexus.kernel.jsonutil import loads

if TYPE_CHECKING:
    from nexus.kernel.db import Database
    from nexus.kernel.http.app import Nexus

log = logging.getLogger("nexus.audit")
GENESIS = "0" * 64
COLUMNS = ("id", "org_id", "at", "actor_id", "actor_kind", "app", "resource", "record_id", "action", "before",
           "after", "request_id", "client_addr")
_SELECT = ", ".join(COLUMNS)


def _canonical(db: Database, row: Sequence[Any]) -> bytes:
    values = dict(zip(COLUMNS, row, strict=True))
    at = db.read_ts(values["at"])
    values["at"] = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if at else None
    for k in ("before", "after"):
        if isinstance(values[k], (str, bytes)):
            values[k] = loads(values[k])
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


def link(db: Database, prev: str, row: Sequence[Any]) -> str:
    return hashlib.sha256(prev.encode() + b"\n" + _canonical(db, row)).hexdigest()


async def seal_once(db: Database, batch: int = 500) -> int:
    """Seal the next batch of entries; returns how many were sealed."""
    async with db.transaction() as conn:
        last = await conn.fetchrow("SELECT seq, hash FROM kernel_audit WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
        seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        rows = await conn.fetch(f"SELECT {_SELECT} FROM kernel_audit WHERE seq IS NULL ORDER BY id LIMIT ?", [batch])
        for row in rows:
            seq += 1
            prev = link(db, prev, row)
            await conn.execute("UPDATE kernel_audit SET seq = ?, hash = ? WHERE id = ?", [seq, prev, row[0]])
        if rows:
            if await conn.execute("UPDATE kernel_audit_head SET seq = ?, hash = ? WHERE id = 1", [seq, prev]) == 0:
                await conn.execute("INSERT INTO kernel_audit_head (id, seq, hash) VALUES (1, ?, ?)", [seq, prev])
    return len(rows)


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    unsealed: int
    problem: str | None = None
    seq: int | None = None
    head: str | None = None


async def verify(db: Database, batch: int = 2000) -> VerifyResult:
    prev, expected_seq, checked = GENESIS, 1, 0
    while True:
        async with db.reader() as conn:
            rows = await conn.fetch(
                f"SELECT seq, hash, {_SELECT} FROM kernel_audit WHERE seq >= ? ORDER BY seq LIMIT ?",
                [expected_seq, batch])
        for r in rows:
            seq, stored = int(r[0]), r[1]
            if seq != expected_seq:
                return VerifyResult(False, checked, 0, f"entry {expected_seq} is missing (next is {seq})", expected_seq)
            want = link(db, prev, r[2:])
            if want != stored:
                return VerifyResult(False, checked, 0, f"entry {seq} (id {r[2]}) was altered", seq)
            prev, expected_seq, checked = stored, seq + 1, checked + 1
        if len(rows) < batch:
            break
    async with db.reader() as conn:
        unsealed = int(await conn.fetchval("SELECT count(*) FROM kernel_audit WHERE seq IS NULL"))
        head = await conn.fetchrow("SELECT seq, hash FROM kernel_audit_head WHERE id = 1")
    if head is not None and (int(head[0]) != expected_seq - 1 or head[1] != prev):
        return VerifyResult(False, checked, unsealed, f"the chain ends at entry {expected_seq - 1} but was sealed up to "
                            f"entry {head[0]}: entries were removed from the end", expected_seq)
    return VerifyResult(True, checked, unsealed, head=prev)


def install(nx: Nexus) -> None:
    state: dict[str, asyncio.Task[None]] = {}

    async def loop() -> None:
        while True:
            try:
                if await nx.events.acquire_lease("audit-sealer"):
                    n = await seal_once(nx.db)
                    if n:
                        continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("audit sealing failed")
            await asyncio.sleep(0.5)

    async def start() -> None:
        state["task"] = asyncio.create_task(loop(), name="nexus-audit-sealer")

    async def stop() -> None:
        task = state.pop("task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    nx.on("background", start)
    nx.on("shutdown", stop)
