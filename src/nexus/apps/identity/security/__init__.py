"""Multi-factor and account security: TOTP and recovery codes, WebAuthn passkeys, the MFA step
of sign-in, step-up, password policy and reset by mail, sessions and sign-in history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nexus.kernel.jsonutil import utcnow

from .routes import ROUTES

CLEANUP_JOB = "identity.security-cleanup"
HISTORY_DAYS = 365  # sign-in history kept this long
CHALLENGE_GRACE = timedelta(days=1)  # spent and expired sign-in steps, kept a day for inquiries
RESET_GRACE = timedelta(days=30)


def setup(nx: Any) -> None:
    from . import reset

    jobs = nx.state.get("jobs")
    if jobs is None:
        return
    if reset.JOB not in jobs.types:
        jobs.register(reset.JOB, reset.send_reset_mail, max_attempts=5, timeout=60)
    if CLEANUP_JOB not in jobs.types:
        jobs.register(CLEANUP_JOB, cleanup, max_attempts=3, timeout=600)
        jobs.schedule(CLEANUP_JOB, "29 4 * * *", CLEANUP_JOB)  # daily, 04:29 UTC


async def cleanup(ctx: Any, payload: dict[str, Any]) -> dict[str, int]:
    """Delete what no longer serves: expired challenges and reset links, old sign-in history,
    password history beyond what any policy can ask for is trimmed as it is written."""
    db = ctx.db
    now = utcnow()
    out = {}
    async with db.transaction() as conn:
        out["challenges"] = await conn.execute("DELETE FROM identity_auth_challenge WHERE expires_at < ?",
                                               [db.ts(now - CHALLENGE_GRACE)])
        out["password_resets"] = await conn.execute("DELETE FROM identity_password_reset WHERE expires_at < ?",
                                                    [db.ts(now - RESET_GRACE)])
        out["sign_ins"] = await conn.execute("DELETE FROM identity_signin_event WHERE at < ?",
                                             [db.ts(now - timedelta(days=HISTORY_DAYS))])
    return out


__all__ = ["ROUTES", "cleanup", "setup"]
