"""Password reset by emailed link.

* Asking never tells whether the address has an account: the answer is always 202, and the
  work done differs only in a queued job. Requests are limited per address and per account.
* The link carries a single-use token (`nxp_<id>_<secret>`, stored as a SHA-256 hash) that
  expires after 30 minutes; a newer request voids older links.
* Using it sets the password (the org's policy applies), unlocks the account and ends every
  session of the user.
* The mail goes out from a background job (kernel/mail.py, NEXUS_SMTP_URL); the link in the
  job's payload is sealed. Links point at NEXUS_PUBLIC_URL, never at the request's Host
  header, which an attacker could choose (reset poisoning).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from nexus.kernel.auth import hash_secret
from nexus.kernel.cache import cache_of
from nexus.kernel.context import Context, Principal, system_context
from nexus.kernel.crypto import SecretBox
from nexus.kernel.errors import Problem
from nexus.kernel.ids import new_id
from nexus.kernel.jsonutil import utcnow
from nexus.kernel.mail import MailError, MailNotConfigured, send_mail
from nexus.kernel.records import UnitOfWork

from . import core, policy

log = logging.getLogger("nexus.identity.reset")
TOKEN_PREFIX = "nxp_"
TTL_SECONDS = 1800
PER_ACCOUNT = 3  # links per account per window
PER_ADDRESS = 10  # requests per client address per window
WINDOW = 900
JOB = "identity.send-password-reset"
RESET_PATH = "/reset-password"


def _box(nx: Any) -> SecretBox:
    b: SecretBox | None = nx.state.get("identity.reset-box")
    if b is None:
        b = nx.state["identity.reset-box"] = SecretBox(nx.settings.secret_key, "identity-password-reset-mail")
    return b


def available(nx: Any) -> bool:
    return bool(nx.settings.smtp_url and nx.settings.public_url)


async def _over(nx: Any, key: str, limit: int) -> bool:
    try:
        return int(await cache_of(nx).incr(key, 1, ttl=WINDOW)) > limit
    except Exception as exc:  # the cache is down: the per-route rate limit still holds
        log.warning("reset limit unavailable", extra={"fields": {"error": str(exc)[:200]}})
        return False


async def request_reset(nx: Any, email: str, org_slug: str | None, client_addr: str | None) -> None:
    if not available(nx):
        raise Problem(503, "Password reset by email is not set up here (NEXUS_SMTP_URL and NEXUS_PUBLIC_URL);"
                           " ask an administrator to set your password.")
    if await _over(nx, f"identity:reset-addr:{client_addr or '?'}", PER_ADDRESS):
        raise Problem(429, "Too many reset requests from this address; wait and try again.",
                      headers={"Retry-After": str(WINDOW)})
    email = email.strip().lower()
    sql = ("SELECT u.id, u.org_id, u.name FROM identity_user u JOIN identity_org o ON o.id = u.org_id"
           " WHERE u.email = ? AND u.deleted_at IS NULL AND u.status <> 'deactivated' AND u.is_service_account = ?")
    args: list[Any] = [email, False]
    if org_slug:
        sql += " AND o.slug = ?"
        args.append(org_slug)
    async with nx.db.reader() as conn:
        rows = await conn.fetch(sql, args)
    for user_id, org_id, name in rows:
        ctx = Context(system_context(org_id).principal, None, client_addr)
        if await _over(nx, f"identity:reset-user:{user_id}", PER_ACCOUNT):
            async with UnitOfWork(nx.db, ctx) as uow:
                uow.audit("identity", "users", user_id, "password_reset_throttled", None, {})
            continue
        rid = new_id()
        secret = secrets.token_urlsafe(32)
        token = f"{TOKEN_PREFIX}{rid}_{secret}"
        link = f"{nx.settings.public_url}{RESET_PATH}?token={token}"
        async with UnitOfWork(nx.db, ctx) as uow:
            # A new link voids the older ones: only the latest mail works.
            await uow.conn.execute(
                "UPDATE identity_password_reset SET used_at = ? WHERE org_id = ? AND user_id = ? AND used_at IS NULL",
                [uow.db.ts(uow.now), org_id, user_id])
            await uow.conn.execute(
                "INSERT INTO identity_password_reset (id, org_id, user_id, secret_hash, created_at, expires_at,"
                " client_addr) VALUES (?,?,?,?,?,?,?)",
                [rid, org_id, user_id, hash_secret(secret), uow.db.ts(uow.now),
                 uow.db.ts(uow.now + timedelta(seconds=TTL_SECONDS)), client_addr])
            await nx.state["jobs"].enqueue_in(uow, JOB, {"to": email, "name": name, "link": _box(nx).seal(link)})
            uow.audit("identity", "users", user_id, "password_reset_requested", None, {"reset_id": rid})


async def send_reset_mail(ctx: Any, payload: dict[str, Any]) -> None:
    """Job handler: send the reset mail (retried with back-off if the server is down)."""
    nx = ctx.nexus
    link = _box(nx).open(payload["link"])
    minutes = TTL_SECONDS // 60
    text = (f"Hello {payload.get('name') or ''},\n\n"
            f"Someone (we hope you) asked to reset your NEXUS password. Open this link within {minutes} minutes"
            f" to choose a new one:\n\n{link}\n\n"
            "If you did not ask, ignore this mail: your password stays as it is.\n")
    try:
        await send_mail(nx.settings, payload["to"], "Reset your NEXUS password", text)
    except MailNotConfigured:
        from nexus.kernel.jobs import JobFailed

        raise JobFailed("NEXUS_SMTP_URL is not set") from None
    except MailError as exc:
        raise RuntimeError(str(exc)) from None


def _split(token: str) -> tuple[str, str] | None:
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    rid, _, secret = token[len(TOKEN_PREFIX):].partition("_")
    return (rid, secret) if len(rid) == 26 and secret else None


async def confirm_reset(nx: Any, token: str, password: str, client_addr: str | None,
                        user_agent: str | None) -> None:
    from ..service import _invalidate, hasher

    parts = _split(token)
    bad = Problem(400, "This reset link is invalid, expired or already used; ask for a new one.",
                  type="invalid-reset-token")
    if parts is None:
        raise bad
    rid, secret = parts
    async with nx.db.reader() as conn:
        row = await conn.fetchrow(
            "SELECT r.org_id, r.user_id, r.secret_hash, r.expires_at, r.used_at, u.email, u.status, u.deleted_at"
            " FROM identity_password_reset r JOIN identity_user u ON u.id = r.user_id WHERE r.id = ?", [rid])
    if row is None or not secrets.compare_digest(row[2], hash_secret(secret)):
        raise bad
    org_id, user_id, _h, expires_at, used_at, email, status, deleted_at = row
    ctx = Context(Principal(user_id=user_id, org_id=org_id, kind="user"), None, client_addr)
    expires = nx.db.read_ts(expires_at)
    reason = None
    if used_at is not None:
        reason = "already used"
    elif expires is None or expires < utcnow():
        reason = "expired"
    elif deleted_at is not None or status == "deactivated":
        reason = "account not active"
    if reason:
        async with UnitOfWork(nx.db, ctx) as uow:
            uow.audit("identity", "users", user_id, "password_reset_refused", None, {"reset_id": rid, "reason": reason})
            await core.record_sign_in(uow, user_id, "password_reset", False, reason, user_agent)
        raise bad
    async with UnitOfWork(nx.db, ctx) as uow:
        await policy.check_password(uow, user_id, email, password)
        n = await uow.conn.execute(
            "UPDATE identity_password_reset SET used_at = ? WHERE id = ? AND used_at IS NULL",
            [uow.db.ts(uow.now), rid])
        if n != 1:
            raise bad
        new_hash = hasher.hash(password)
        await uow.conn.execute(
            "UPDATE identity_user SET password_hash = ?, failed_logins = 0, locked_until = NULL,"
            " status = CASE WHEN status = 'invited' THEN 'active' ELSE status END WHERE id = ?", [new_hash, user_id])
        await policy.remember_password(uow, user_id, new_hash)
        ended = await uow.conn.execute(
            "UPDATE identity_session SET revoked_at = ?, revoked_reason = 'password_reset' WHERE org_id = ?"
            " AND user_id = ? AND revoked_at IS NULL", [uow.db.ts(uow.now), org_id, user_id])
        await core.record_sign_in(uow, user_id, "password_reset", True, None, user_agent)
        uow.audit("identity", "users", user_id, "password_reset", None, {"reset_id": rid, "sessions_ended": ended})
    _invalidate()
