"""Idempotency-Key on POST: the first response for (org, caller, key) is stored in the same
transaction as the change it made, and replayed for a retry with the same body. The same
key with another body is refused."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response

from nexus.kernel.context import Context
from nexus.kernel.db import Database, is_unique_violation
from nexus.kernel.errors import Problem
from nexus.kernel.jsonutil import dumps, loads
from nexus.kernel.records import UnitOfWork

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

Produce = Callable[[UnitOfWork], Awaitable[tuple[int, dict[str, str], Any]]]


def _hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


async def run_idempotent(db: Database, ctx: Context, key: str | None, method: str, path: str, body: bytes,
                         produce: Produce) -> Response:
    """Run `produce` in a unit of work; returns its (status, headers, JSON content) as a Response."""
    if key is None:
        async with UnitOfWork(db, ctx) as uow:
            status, headers, content = await produce(uow)
        return _response(status, headers, content)
    if not _KEY.match(key):
        raise Problem(400, "Idempotency-Key must be 1 to 255 visible ASCII characters.",
                      errors=[{"pointer": "/headers/Idempotency-Key", "detail": "malformed"}])
    try:
        return await _run_keyed(db, ctx, key, method, path, body, produce)
    except _Raced:
        pass
    except Problem:
        # A domain rule may refuse us *because* a concurrent retry with the same key just
        # succeeded ("this name exists"): if that retry's answer is stored now, it is ours.
        replay = await _stored(db, ctx, key, _hash(method, path, body))
        if replay is not None:
            return replay
        raise
    except Exception as exc:
        # A concurrent retry with the same key committed first: our whole change rolled
        # back with the key's row, so answer with what the winner stored.
        if not is_unique_violation(exc):
            raise
    return await _run_keyed(db, ctx, key, method, path, body, produce)


async def _stored(db: Database, ctx: Context, key: str, req_hash: str) -> Response | None:
    p = ctx.principal
    async with db.reader() as conn:
        row = await conn.fetchrow(
            "SELECT request_hash, status, headers, body FROM kernel_idempotency"
            " WHERE org_id = ? AND principal_id = ? AND key = ?", [p.org_id, p.api_key_id or p.user_id, key])
    if row is None or row[0] != req_hash:
        return None
    headers = row[2] if isinstance(row[2], dict) else loads(row[2])
    headers["Idempotent-Replayed"] = "true"
    return Response(_open(db, row[3]), status_code=row[1], headers=headers, media_type="application/json")


class _Raced(Exception):
    pass


async def _run_keyed(db: Database, ctx: Context, key: str, method: str, path: str, body: bytes,
                     produce: Produce) -> Response:
    req_hash = _hash(method, path, body)
    p = ctx.principal
    principal_id = p.api_key_id or p.user_id
    async with UnitOfWork(db, ctx) as uow:
        row = await uow.conn.fetchrow(
            "SELECT request_hash, status, headers, body FROM kernel_idempotency"
            " WHERE org_id = ? AND principal_id = ? AND key = ?",
            [p.org_id, principal_id, key],
        )
        if row is not None:
            if row[0] != req_hash:
                raise Problem(422, "This Idempotency-Key was already used with a different request.",
                              type="idempotency-key-reused")
            headers = row[2] if isinstance(row[2], dict) else loads(row[2])
            headers["Idempotent-Replayed"] = "true"
            return Response(_open(db, row[3]), status_code=row[1], headers=headers,
                            media_type="application/json")
        status, headers, content = await produce(uow)
        body_out = dumps(content)
        try:
            await uow.write(
                "INSERT INTO kernel_idempotency (org_id, principal_id, key, request_hash, status, headers, body,"
                " created_at, method_path) VALUES (?,?,?,?,?,?,?,?,?)",
                [p.org_id, principal_id, key, req_hash, status, db.json(headers), _seal(db, body_out), db.ts(uow.now),
                 f"{method} {path}"],
            )
        except Exception as exc:
            if is_unique_violation(exc):
                raise _Raced from None
            raise
    return Response(body_out, status_code=status, headers=headers, media_type="application/json")


def _seal(db: Database, body: bytes) -> bytes:
    """Stored responses can hold what is shown once (a new API key): kept encrypted at rest."""
    box = db.secret_box
    return box.seal(body.decode()).encode() if box is not None else body


def _open(db: Database, stored: Any) -> bytes:
    raw = bytes(stored)
    box = db.secret_box
    if box is not None and raw.startswith(b"gAAAA"):
        return box.open(raw.decode()).encode()  # type: ignore[no-any-return]
    return raw


def _response(status: int, headers: dict[str, str], content: Any) -> Response:
    if status == 204:
        return Response(status_code=204, headers=headers)
    return Response(dumps(content), status_code=status, headers=headers, media_type="application/json")
