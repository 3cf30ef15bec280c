"""Per-org security policy: whether MFA is required, how long a step-up lasts, and what a
password must be (length, not a common one, not the email, not one of the last N)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from nexus.kernel.errors import validation
from nexus.kernel.ids import new_id
from nexus.kernel.records import UnitOfWork

MIN_LENGTH_FLOOR = 8  # NIST SP 800-63B: no policy may go below eight characters
MAX_HISTORY = 24


@dataclass(frozen=True)
class Policy:
    require_mfa: bool = False
    password_min_length: int = 10
    password_history: int = 5
    password_block_common: bool = True
    step_up_max_age: int = 600

    def public(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT = Policy()
_FIELDS = tuple(DEFAULT.public())


async def load(conn: Any, org_id: str) -> Policy:
    row = await conn.fetchrow(
        f"SELECT {', '.join(_FIELDS)} FROM identity_security_policy WHERE org_id = ?", [org_id])
    if row is None:
        return DEFAULT
    return Policy(bool(row[0]), int(row[1]), int(row[2]), bool(row[3]), int(row[4]))


def validate_changes(body: dict[str, Any]) -> dict[str, Any]:
    errors = []
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key not in _FIELDS:
            errors.append({"pointer": f"/{key}", "detail": "unknown setting"})
            continue
        kind = type(getattr(DEFAULT, key))
        if kind is bool:
            if not isinstance(value, bool):
                errors.append({"pointer": f"/{key}", "detail": "must be true or false"})
                continue
        elif not isinstance(value, int) or isinstance(value, bool):
            errors.append({"pointer": f"/{key}", "detail": "must be an integer"})
            continue
        out[key] = value
    bounds = {"password_min_length": (MIN_LENGTH_FLOOR, 128), "password_history": (0, MAX_HISTORY),
              "step_up_max_age": (60, 86_400)}
    for key, (lo, hi) in bounds.items():
        if key in out and not lo <= out[key] <= hi:
            errors.append({"pointer": f"/{key}", "detail": f"must be between {lo} and {hi}"})
    if errors:
        raise validation(errors)
    return out


async def save(uow: UnitOfWork, changes: dict[str, Any]) -> Policy:
    before = await load(uow.conn, uow.ctx.org_id)
    after = Policy(**{**before.public(), **changes})
    db = uow.db
    values = [getattr(after, f) for f in _FIELDS]
    exists = await uow.conn.fetchval("SELECT 1 FROM identity_security_policy WHERE org_id = ?", [uow.ctx.org_id])
    if exists:
        await uow.conn.execute(
            f"UPDATE identity_security_policy SET {', '.join(f + ' = ?' for f in _FIELDS)}, updated_at = ?,"
            " updated_by = ? WHERE org_id = ?", [*values, db.ts(uow.now), uow.ctx.user_id, uow.ctx.org_id])
    else:
        await uow.conn.execute(
            f"INSERT INTO identity_security_policy (org_id, {', '.join(_FIELDS)}, updated_at, updated_by)"
            f" VALUES ({', '.join('?' * (len(_FIELDS) + 3))})",
            [uow.ctx.org_id, *values, db.ts(uow.now), uow.ctx.user_id])
    uow.audit("identity", "security-policy", uow.ctx.org_id, "updated", before.public(), after.public())
    return after


# -- passwords --------------------------------------------------------------------------


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def password_problems(policy: Policy, password: str, email: str | None) -> list[str]:
    out = []
    if len(password) < policy.password_min_length:
        out.append(f"must be at least {policy.password_min_length} characters")
    lowered = password.strip().lower()
    if policy.password_block_common and lowered in common_passwords():
        out.append("is one of the most common passwords; choose another")
    if email:
        local = email.lower().split("@", 1)[0]
        if lowered == email.lower() or (len(local) >= 4 and lowered == local):
            out.append("must not be your email address")
    return out


async def check_password(uow: UnitOfWork, user_id: str | None, email: str | None, password: str,
                         pointer: str = "/password") -> Policy:
    """Refuse (422) a password the org's policy does not allow, naming every reason."""
    from ..service import hasher

    policy = await load(uow.conn, uow.ctx.org_id)
    problems = password_problems(policy, password, email)
    if user_id is not None and policy.password_history and not problems:
        rows = await uow.conn.fetch(
            "SELECT password_hash FROM identity_password_history WHERE org_id = ? AND user_id = ?"
            " ORDER BY created_at DESC, id DESC LIMIT ?", [uow.ctx.org_id, user_id, policy.password_history])
        for (old_hash,) in rows:
            try:
                if hasher.verify(old_hash, password):
                    problems.append(f"was used recently; choose one you have not used in your last "
                                    f"{policy.password_history} passwords")
                    break
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                continue
    if problems:
        raise validation([{"pointer": pointer, "detail": p} for p in problems],
                         detail="The password does not meet the organisation's password policy.")
    return policy


async def remember_password(uow: UnitOfWork, user_id: str, password_hash: str) -> None:
    """Keep the new hash in the user's history, and only as many as the largest policy needs."""
    await uow.conn.execute(
        "INSERT INTO identity_password_history (id, org_id, user_id, password_hash, created_at) VALUES (?,?,?,?,?)",
        [new_id(), uow.ctx.org_id, user_id, password_hash, uow.db.ts(uow.now)])
    rows = await uow.conn.fetch(
        "SELECT id FROM identity_password_history WHERE org_id = ? AND user_id = ?"
        " ORDER BY created_at DESC, id DESC", [uow.ctx.org_id, user_id])
    stale = [r[0] for r in rows[MAX_HISTORY:]]
    for sid in stale:
        await uow.conn.execute("DELETE FROM identity_password_history WHERE id = ?", [sid])

