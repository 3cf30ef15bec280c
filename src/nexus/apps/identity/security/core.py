"""Pieces every security flow shares: single-use challenges, sign-in history, and the
per-account failure counter that second factors feed as passwords do."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from nexus.kernel.auth import hash_secret
from nexus.kernel.context import Context, request_id_var, system_context
from nexus.kernel.db import Database
from nexus.kernel.errors import Problem
from nexus.kernel.ids import new_id
from nexus.kernel.jsonutil import loads, utcnow
from nexus.kernel.records import UnitOfWork

CHALLENGE_PREFIX = "nxm_"
MFA_TOKEN_TTL = 300
MAX_CHALLENGE_ATTEMPTS = 5


@dataclass
class Challenge:
    id: str
    purpose: str
    org_id: str | None
    user_id: str | None
    data: dict[str, Any]
    attempts: int
    client_addr: str | None
    user_agent: str | None


async def new_challenge(uow: UnitOfWork, purpose: str, *, org_id: str | None, user_id: str | None,
                        data: dict[str, Any] | None = None, ttl: int = MFA_TOKEN_TTL,
                        client_addr: str | None = None, user_agent: str | None = None) -> str:
    """A challenge row; the returned token (`nxm_<id>_<secret>`) is its only key, stored hashed."""
    cid = new_id()
    secret = secrets.token_urlsafe(32)
    db = uow.db
    await uow.conn.execute(
        "INSERT INTO identity_auth_challenge (id, purpose, org_id, user_id, secret_hash, data, attempts,"
        " created_at, expires_at, used_at, client_addr, user_agent) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [cid, purpose, org_id, user_id, hash_secret(secret), db.json(data or {}), 0, db.ts(uow.now),
         db.ts(uow.now + timedelta(seconds=ttl)), None, client_addr, (user_agent or "")[:300]])
    return f"{CHALLENGE_PREFIX}{cid}_{secret}"


def _split(token: str) -> tuple[str, str] | None:
    if not isinstance(token, str) or not token.startswith(CHALLENGE_PREFIX) or len(token) > 200:
        return None
    cid, _, secret = token[len(CHALLENGE_PREFIX):].partition("_")
    if len(cid) != 26 or not secret:
        return None
    return cid, secret


async def load_challenge(db: Database, token: str, purpose: str | tuple[str, ...], what: str = "sign-in step") -> Challenge:
    """The live challenge a token names, or 400 (unknown, used, expired, another purpose)."""
    purposes = (purpose,) if isinstance(purpose, str) else purpose
    parts = _split(token)
    gone = Problem(400, f"This {what} has expired or was already used; start again.", type="invalid-grant",
                   title="Sign-in failed", extra={"error": "invalid_grant", "error_description": "expired or used"})
    if parts is None:
        raise gone
    cid, secret = parts
    async with db.reader() as conn:
        row = await conn.fetchrow(
            "SELECT purpose, org_id, user_id, secret_hash, data, attempts, expires_at, used_at, client_addr,"
            " user_agent FROM identity_auth_challenge WHERE id = ?", [cid])
    if row is None:
        raise gone  # nothing to file it under; the per-address rate limit bounds guessing
    expires = db.read_ts(row[6])
    reason = None
    if not secrets.compare_digest(row[3], hash_secret(secret)):
        reason = "wrong secret"
    elif row[0] not in purposes:
        reason = f"used for {'/'.join(purposes)}, issued for {row[0]}"
    elif row[7] is not None:
        reason = "already used"
    elif expires is None or expires < utcnow():
        reason = "expired"
    elif row[5] >= MAX_CHALLENGE_ATTEMPTS:
        reason = "too many attempts"
    if reason is not None:
        if row[1] is not None:
            async with UnitOfWork(db, Context(system_context(row[1]).principal, request_id_var.get(), row[8])) as uow:
                uow.audit("identity", "auth-challenges", cid, "challenge_refused", None,
                          {"purpose": row[0], "user_id": row[2], "reason": reason})
        raise gone
    data = row[4] if isinstance(row[4], dict) else loads(row[4] or "{}")
    return Challenge(cid, row[0], row[1], row[2], data, row[5], row[8], row[9])


async def consume(uow: UnitOfWork, challenge: Challenge) -> None:
    """Mark used: a compare-and-set, so that two requests racing with one token cannot both win."""
    n = await uow.conn.execute(
        "UPDATE identity_auth_challenge SET used_at = ? WHERE id = ? AND used_at IS NULL",
        [uow.db.ts(uow.now), challenge.id])
    if n != 1:
        raise Problem(400, "This sign-in step was already used; start again.", type="invalid-grant",
                      title="Sign-in failed", extra={"error": "invalid_grant"})


async def update_data(uow: UnitOfWork, challenge: Challenge, data: dict[str, Any]) -> None:
    await uow.conn.execute("UPDATE identity_auth_challenge SET data = ? WHERE id = ?",
                           [uow.db.json(data), challenge.id])


async def fail_attempt(uow: UnitOfWork, challenge: Challenge) -> int:
    await uow.conn.execute("UPDATE identity_auth_challenge SET attempts = attempts + 1 WHERE id = ?", [challenge.id])
    return int(await uow.conn.fetchval("SELECT attempts FROM identity_auth_challenge WHERE id = ?", [challenge.id]))


async def count_account_failure(uow: UnitOfWork, user_id: str) -> int:
    """A wrong second factor counts against the account like a wrong password: the same
    exponential lockout, so that a stolen password does not buy unlimited code guesses."""
    from ..service import LOCK_BASE_SECONDS, LOCK_MAX_SECONDS, MAX_FAILED_BEFORE_LOCK

    await uow.conn.execute(
        "UPDATE identity_user SET failed_logins = COALESCE(failed_logins, 0) + 1 WHERE id = ?", [user_id])
    failed = int(await uow.conn.fetchval("SELECT failed_logins FROM identity_user WHERE id = ?", [user_id]))
    if failed >= MAX_FAILED_BEFORE_LOCK:
        seconds = LOCK_MAX_SECONDS
        if failed - MAX_FAILED_BEFORE_LOCK < 20:
            seconds = min(LOCK_BASE_SECONDS * 2 ** (failed - MAX_FAILED_BEFORE_LOCK), LOCK_MAX_SECONDS)
        await uow.conn.execute("UPDATE identity_user SET locked_until = ? WHERE id = ?",
                               [uow.db.ts(uow.now + timedelta(seconds=seconds)), user_id])
    return failed


async def account_locked(db: Database, user_id: str) -> int | None:
    """Seconds until the account unlocks, or None when it is not locked."""
    async with db.reader() as conn:
        raw = await conn.fetchval("SELECT locked_until FROM identity_user WHERE id = ?", [user_id])
    locked = db.read_ts(raw)
    now = utcnow()
    if locked is not None and locked > now:
        return int((locked - now).total_seconds()) + 1
    return None


async def record_sign_in(uow: UnitOfWork, user_id: str | None, method: str, success: bool,
                         reason: str | None = None, user_agent: str | None = None,
                         session_id: str | None = None) -> None:
    """One line of sign-in history, in the org of the unit of work."""
    await uow.conn.execute(
        "INSERT INTO identity_signin_event (id, org_id, user_id, at, method, success, reason, client_addr,"
        " user_agent, session_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [new_id(), uow.ctx.org_id, user_id, uow.db.ts(uow.now), method, success, reason, uow.ctx.client_addr,
         (user_agent or "")[:300] or None, session_id])
