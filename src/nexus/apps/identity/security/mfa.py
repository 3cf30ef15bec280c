"""Second factors: TOTP authenticator apps (RFC 6238) and single-use recovery codes, the MFA
step of sign-in, and step-up for sensitive actions.

* A TOTP seed is sealed with the kernel's SecretBox; codes are accepted one step either side
  of now, and a time step once accepted cannot be used again (replay).
* Recovery codes are 10 random codes of 50 bits, shown once and stored as keyed HMACs.
* Wrong codes count against the account like wrong passwords (the same lockout), burn the
  MFA token after 5 tries, and are audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any

import pyotp
import segno

from nexus.kernel.context import Context, Principal
from nexus.kernel.crypto import SecretBox
from nexus.kernel.errors import Problem
from nexus.kernel.ids import new_id
from nexus.kernel.records import UnitOfWork

from . import core, policy

if TYPE_CHECKING:
    from ..service import SignIn

TOTP_PERIOD = 30
TOTP_DIGITS = 6
RECOVERY_CODES = 10
ISSUER = "NEXUS"
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud and typed from paper


def box(nx: Any) -> SecretBox:
    box_: SecretBox | None = nx.state.get("identity.mfa-box")
    if box_ is None:
        box_ = nx.state["identity.mfa-box"] = SecretBox(nx.settings.secret_key, "identity-totp")
    return box_


# -- factors -------------------------------------------------------------------------------


async def factors_of(conn: Any, org_id: str, user_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, kind, name, created_at, confirmed_at, last_used_at, discoverable, transports FROM"
        " identity_mfa_factor WHERE org_id = ? AND user_id = ? ORDER BY created_at, id", [org_id, user_id])
    out = []
    for r in rows:
        out.append({"id": r[0], "kind": r[1], "name": r[2], "created_at": r[3], "confirmed_at": r[4],
                    "last_used_at": r[5], "discoverable": bool(r[6]) if r[1] == "webauthn" else None})
    return out


async def active_methods(conn: Any, org_id: str, user_id: str) -> list[str]:
    """The second factors a user can sign in with now: totp, webauthn, recovery_code."""
    rows = await conn.fetch(
        "SELECT DISTINCT kind FROM identity_mfa_factor WHERE org_id = ? AND user_id = ?"
        " AND (kind <> 'totp' OR confirmed_at IS NOT NULL)", [org_id, user_id])
    methods = sorted(r[0] for r in rows)
    if methods and await conn.fetchval(
            "SELECT 1 FROM identity_recovery_code WHERE org_id = ? AND user_id = ? AND used_at IS NULL LIMIT 1",
            [org_id, user_id]):
        methods.append("recovery_code")
    return methods


def _qr_svg(uri: str) -> str:
    qr = segno.make(uri, error="m")
    svg: str = qr.svg_data_uri(scale=5, border=2)
    return svg


async def start_totp(uow: UnitOfWork, nx: Any, user_id: str, email: str, name: str | None = None) -> dict[str, Any]:
    """A new, unconfirmed TOTP factor: the seed (for typing in), its otpauth URI and QR code."""
    await uow.conn.execute(
        "DELETE FROM identity_mfa_factor WHERE org_id = ? AND user_id = ? AND kind = 'totp' AND confirmed_at IS NULL",
        [uow.ctx.org_id, user_id])
    secret = pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends
    fid = new_id()
    await uow.conn.execute(
        "INSERT INTO identity_mfa_factor (id, org_id, user_id, kind, name, created_at, secret_sealed, sign_count,"
        " transports, discoverable) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [fid, uow.ctx.org_id, user_id, "totp", (name or "Authenticator app")[:200], uow.db.ts(uow.now),
         box(nx).seal(secret), 0, uow.db.json([]), False])
    uri = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(name=email, issuer_name=ISSUER)
    uow.audit("identity", "mfa-factors", fid, "totp_enrolment_started", None, {"user_id": user_id})
    return {"factor_id": fid, "secret": secret, "otpauth_uri": uri, "qr_svg": _qr_svg(uri),
            "period": TOTP_PERIOD, "digits": TOTP_DIGITS}


def _matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step (within ±1 of now) whose code this is, or None."""
    code = code.strip().replace(" ", "")
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD)
    now = time.time() if now is None else now
    current = int(now // TOTP_PERIOD)
    found = None
    for step in (current - 1, current, current + 1):
        # Compare all three, in constant time, so timing does not tell which step matched.
        if hmac.compare_digest(totp.at(step * TOTP_PERIOD), code):
            found = step
    return found


async def check_totp(uow: UnitOfWork, nx: Any, user_id: str, code: str, *, factor_id: str | None = None,
                     confirming: bool = False) -> str | None:
    """The id of the factor the code is good for (and that step is used up), or None."""
    sql = ("SELECT id, secret_sealed, last_step FROM identity_mfa_factor WHERE org_id = ? AND user_id = ?"
           " AND kind = 'totp' AND confirmed_at IS " + ("NULL" if confirming else "NOT NULL"))
    args: list[Any] = [uow.ctx.org_id, user_id]
    if factor_id is not None:
        sql += " AND id = ?"
        args.append(factor_id)
    for fid, sealed, last_step in await uow.conn.fetch(sql, args):
        step = _matching_step(box(nx).open(sealed), code)
        if step is None:
            continue
        if last_step is not None and step <= last_step:
            return None  # replayed, or older than a code already used
        # Compare-and-set on the last step: a code is good once, even for two racing requests.
        n = await uow.conn.execute(
            "UPDATE identity_mfa_factor SET last_step = ?, last_used_at = ? WHERE id = ?"
            " AND (last_step IS NULL OR last_step < ?)", [step, uow.db.ts(uow.now), fid, step])
        if n == 1:
            return str(fid)
        return None  # replayed
    return None


async def confirm_totp(uow: UnitOfWork, nx: Any, user_id: str, factor_id: str, code: str) -> dict[str, Any]:
    """Confirm an enrolment with its first code; the first factor also gets recovery codes."""
    row = await uow.conn.fetchrow(
        "SELECT confirmed_at FROM identity_mfa_factor WHERE id = ? AND org_id = ? AND user_id = ? AND kind = 'totp'",
        [factor_id, uow.ctx.org_id, user_id])
    if row is None:
        raise Problem(404, "No such authenticator enrolment.")
    if row[0] is not None:
        raise Problem(409, "This authenticator is already confirmed.")
    had_factor = bool(await active_methods(uow.conn, uow.ctx.org_id, user_id))
    if await check_totp(uow, nx, user_id, code, factor_id=factor_id, confirming=True) is None:
        # (the route audits the failure: this unit of work rolls back)
        raise Problem(422, "The code is wrong or expired; enter the code your app shows now.",
                      errors=[{"pointer": "/code", "detail": "wrong or expired code"}])
    await uow.conn.execute("UPDATE identity_mfa_factor SET confirmed_at = ? WHERE id = ?",
                           [uow.db.ts(uow.now), factor_id])
    uow.audit("identity", "mfa-factors", factor_id, "totp_enrolled", None, {"user_id": user_id})
    out: dict[str, Any] = {"factor_id": factor_id, "confirmed": True}
    if not had_factor:
        out["recovery_codes"] = await new_recovery_codes(uow, nx, user_id)
    return out


async def remove_factor(uow: UnitOfWork, user_id: str, factor_id: str) -> None:
    row = await uow.conn.fetchrow(
        "SELECT kind, name FROM identity_mfa_factor WHERE id = ? AND org_id = ? AND user_id = ?",
        [factor_id, uow.ctx.org_id, user_id])
    if row is None:
        raise Problem(404, "No such factor.")
    await uow.conn.execute("DELETE FROM identity_mfa_factor WHERE id = ?", [factor_id])
    remaining = [m for m in await active_methods(uow.conn, uow.ctx.org_id, user_id) if m != "recovery_code"]
    if not remaining:
        pol = await policy.load(uow.conn, uow.ctx.org_id)
        if pol.require_mfa and uow.ctx.principal.user_id == user_id:
            raise Problem(409, "Your organisation requires a second factor: add another before removing this one.")
        # Without a factor, recovery codes would be a second factor of nothing.
        await uow.conn.execute("DELETE FROM identity_recovery_code WHERE org_id = ? AND user_id = ?",
                               [uow.ctx.org_id, user_id])
    uow.audit("identity", "mfa-factors", factor_id, "removed", {"kind": row[0], "name": row[1], "user_id": user_id},
              None)


# -- recovery codes ------------------------------------------------------------------------


def _code_hash(nx: Any, code: str) -> str:
    """HMAC-SHA256 with a key derived from NEXUS_SECRET_KEY: 50 bits per code would fall to an
    offline search of a leaked table of plain hashes; without the server's key they do not."""
    key: bytes | None = nx.state.get("identity.recovery-key")
    if key is None:
        key = nx.state["identity.recovery-key"] = hashlib.sha256(
            b"nexus-recovery-codes\x00" + nx.settings.secret_key.encode()).digest()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def _normalise_code(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


async def new_recovery_codes(uow: UnitOfWork, nx: Any, user_id: str) -> list[str]:
    """Replace the user's recovery codes with 10 new ones, returned once."""
    await uow.conn.execute("DELETE FROM identity_recovery_code WHERE org_id = ? AND user_id = ?",
                           [uow.ctx.org_id, user_id])
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        await uow.conn.execute(
            "INSERT INTO identity_recovery_code (id, org_id, user_id, code_hash, created_at) VALUES (?,?,?,?,?)",
            [new_id(), uow.ctx.org_id, user_id, _code_hash(nx, _normalise_code(raw)), uow.db.ts(uow.now)])
    uow.audit("identity", "recovery-codes", user_id, "generated", None, {"count": RECOVERY_CODES})
    return codes


async def use_recovery_code(uow: UnitOfWork, nx: Any, user_id: str, code: str) -> bool:
    norm = _normalise_code(code)
    if len(norm) != 10:
        return False
    n = await uow.conn.execute(
        "UPDATE identity_recovery_code SET used_at = ? WHERE org_id = ? AND user_id = ? AND code_hash = ?"
        " AND used_at IS NULL", [uow.db.ts(uow.now), uow.ctx.org_id, user_id, _code_hash(nx, norm)])
    if n == 1:
        left = await uow.conn.fetchval(
            "SELECT count(*) FROM identity_recovery_code WHERE org_id = ? AND user_id = ? AND used_at IS NULL",
            [uow.ctx.org_id, user_id])
        uow.audit("identity", "recovery-codes", user_id, "used", None, {"left": int(left)})
        return True
    return False


async def recovery_codes_left(conn: Any, org_id: str, user_id: str) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM identity_recovery_code WHERE org_id = ? AND user_id = ? AND used_at IS NULL",
        [org_id, user_id]))


# -- the MFA step of sign-in ----------------------------------------------------------------


async def gate(signin: SignIn, user_id: str, org_id: str, client_addr: str | None,
               user_agent: str | None, first: str = "pwd") -> dict[str, Any] | None:
    """After a good password: None when the user may have a session now; else the MFA
    challenge (a factor is set up) or the enrolment challenge (the org requires one)."""
    async with signin.db.reader() as conn:
        methods = await active_methods(conn, org_id, user_id)
        pol = await policy.load(conn, org_id) if not methods else None
    if not methods and not (pol and pol.require_mfa):
        return None
    purpose = "mfa" if methods else "mfa_enrol"
    ctx = Context(Principal(user_id=user_id, org_id=org_id, kind="user"), None, client_addr)
    async with UnitOfWork(signin.db, ctx) as uow:
        token = await core.new_challenge(uow, purpose, org_id=org_id, user_id=user_id, data={"first": first},
                                         client_addr=client_addr, user_agent=user_agent)
        await core.record_sign_in(uow, user_id, "password", True, "mfa_pending" if methods else "mfa_enrol_required",
                                  user_agent)
        uow.audit("identity", "users", user_id, "mfa_challenged" if methods else "mfa_enrolment_required", None,
                  {"methods": methods})
    out: dict[str, Any] = {"mfa_token": token, "expires_in": core.MFA_TOKEN_TTL}
    if methods:
        out.update({"mfa_required": True, "methods": methods})
    else:
        out.update({"mfa_enrollment_required": True, "methods": ["totp"]})
    return out


async def finish(signin: SignIn, nx: Any, mfa_token: str, *, otp: str | None = None,
                 recovery_code: str | None = None, credential: Any = None, origin: tuple[str, str] | None = None,
                 client_addr: str | None = None, user_agent: str | None = None) -> dict[str, Any]:
    """Complete a sign-in with the second factor; returns tokens (plus recovery codes when this
    step also finished a forced TOTP enrolment)."""
    given = [x for x in (otp, recovery_code, credential) if x]
    if len(given) != 1:
        raise Problem(400, "Send exactly one of otp, recovery_code or credential.", extra={"error": "invalid_request"})
    ch = await core.load_challenge(signin.db, mfa_token, ("mfa", "mfa_enrol"))
    assert ch.user_id and ch.org_id
    user_id, org_id = ch.user_id, ch.org_id
    wait = await core.account_locked(signin.db, user_id)
    if wait is not None:
        raise Problem(429, "Too many failed sign-ins; the account is locked for a while.", type="invalid-grant",
                      headers={"Retry-After": str(wait)}, extra={"error": "invalid_grant"})
    ctx = Context(Principal(user_id=user_id, org_id=org_id, kind="user"), None, client_addr)
    method: str
    ok = False
    extra: dict[str, Any] = {}
    amr: list[str] = [ch.data.get("first", "pwd")]
    async with UnitOfWork(signin.db, ctx) as uow:
        if ch.purpose == "mfa_enrol":
            pending = ch.data.get("pending_totp")
            method = "totp"
            if not otp or not pending:
                raise Problem(400, "Enrol an authenticator first (POST /api/v1/auth/mfa/totp), then send its code as otp.",
                              extra={"error": "invalid_request"})
            row = await uow.conn.fetchrow("SELECT confirmed_at FROM identity_mfa_factor WHERE id = ? AND user_id = ?",
                                          [pending, user_id])
            if row is not None and await check_totp(uow, nx, user_id, otp, factor_id=pending, confirming=True):
                await uow.conn.execute("UPDATE identity_mfa_factor SET confirmed_at = ? WHERE id = ?",
                                       [uow.db.ts(uow.now), pending])
                uow.audit("identity", "mfa-factors", pending, "totp_enrolled", None, {"user_id": user_id})
                extra["recovery_codes"] = await new_recovery_codes(uow, nx, user_id)
                ok = True
            amr += ["otp", "mfa"]
        elif otp:
            method = "totp"
            ok = await check_totp(uow, nx, user_id, otp) is not None
            amr += ["otp", "mfa"]
        elif recovery_code:
            method = "recovery_code"
            ok = await use_recovery_code(uow, nx, user_id, recovery_code)
            amr += ["otp", "mfa"]
        else:
            from . import passkeys

            method = "passkey"
            if origin is None or "webauthn" not in ch.data:
                raise Problem(400, "Ask for passkey options first (POST /api/v1/auth/mfa/passkey-options).",
                              extra={"error": "invalid_request"})
            ok = await passkeys.check_assertion(uow, nx, credential, ch.data["webauthn"], origin, user_id=user_id)
            amr += ["hwk", "mfa"]
        if ok:
            await core.consume(uow, ch)
    if not ok:
        await _second_factor_failed(signin, ch, ctx, method, user_agent)
    tokens = await signin.open_session(user_id, org_id, client_addr, user_agent or ch.user_agent, amr=amr,
                                       method=method)
    tokens.update(extra)
    return tokens


async def _second_factor_failed(signin: SignIn, ch: core.Challenge, ctx: Context, method: str,
                                user_agent: str | None) -> None:
    assert ch.user_id
    async with UnitOfWork(signin.db, ctx) as uow:
        attempts = await core.fail_attempt(uow, ch)
        failed = await core.count_account_failure(uow, ch.user_id)
        await core.record_sign_in(uow, ch.user_id, method, False, "wrong second factor", user_agent)
        uow.audit("identity", "users", ch.user_id, "mfa_failed",
                  None, {"method": method, "attempts": attempts, "failed_logins": failed})
    left = core.MAX_CHALLENGE_ATTEMPTS - attempts
    detail = "The code is wrong, expired or already used."
    detail += f" {left} tries left." if left > 0 else " Sign in again."
    raise Problem(400, detail, type="invalid-grant", title="Sign-in failed",
                  extra={"error": "invalid_grant", "error_description": detail})


async def start_enrolment_at_sign_in(signin: SignIn, nx: Any, mfa_token: str) -> dict[str, Any]:
    """For a user the org forces to enrol: a TOTP seed to confirm with the MFA step."""
    ch = await core.load_challenge(signin.db, mfa_token, "mfa_enrol")
    assert ch.user_id and ch.org_id
    async with signin.db.reader() as conn:
        email = await conn.fetchval("SELECT email FROM identity_user WHERE id = ?", [ch.user_id])
    ctx = Context(Principal(user_id=ch.user_id, org_id=ch.org_id, kind="user"), None, ch.client_addr)
    async with UnitOfWork(signin.db, ctx) as uow:
        out = await start_totp(uow, nx, ch.user_id, str(email))
        await core.update_data(uow, ch, {**ch.data, "pending_totp": out["factor_id"]})
    return out


# -- step-up ------------------------------------------------------------------------------


async def step_up(signin: SignIn, nx: Any, principal: Principal, body: dict[str, Any],
                  origin: tuple[str, str] | None, client_addr: str | None, user_agent: str | None) -> dict[str, Any]:
    """Prove it is still you: with a second factor when you have one, else with your password.
    Moves the session's auth_time to now."""
    from ..service import _DUMMY_HASH, _invalidate, _verify

    if principal.kind != "user" or principal.session_id is None:
        raise Problem(400, "Only a signed-in person can step up; API keys cannot.")
    user_id, org_id = principal.user_id, principal.org_id
    wait = await core.account_locked(signin.db, user_id)
    if wait is not None:
        raise Problem(429, "Too many failed attempts; the account is locked for a while.",
                      headers={"Retry-After": str(wait)})
    async with signin.db.reader() as conn:
        methods = await active_methods(conn, org_id, user_id)
        pw_hash = await conn.fetchval("SELECT password_hash FROM identity_user WHERE id = ?", [user_id])
    ctx = Context(principal, None, client_addr)
    otp, code, password, credential = (body.get("otp"), body.get("recovery_code"), body.get("password"),
                                       body.get("credential"))
    ok = False
    amr: list[str]
    async with UnitOfWork(signin.db, ctx) as uow:
        if methods and password and not (otp or code or credential):
            raise Problem(400, "You have a second factor: step up with it (otp, recovery_code or a passkey).",
                          extra={"methods": methods})
        if otp:
            method, amr = "totp", ["otp", "mfa"]
            ok = await check_totp(uow, nx, user_id, str(otp)) is not None
        elif code:
            method, amr = "recovery_code", ["otp", "mfa"]
            ok = await use_recovery_code(uow, nx, user_id, str(code))
        elif credential:
            from . import passkeys

            method, amr = "passkey", ["hwk", "mfa"]
            token = body.get("challenge_token")
            if not isinstance(token, str) or origin is None:
                raise Problem(400, "Send challenge_token from POST /api/v1/auth/step-up/passkey-options.")
            ch = await core.load_challenge(signin.db, token, "webauthn_stepup")
            if ch.user_id != user_id:
                raise Problem(400, "This challenge belongs to someone else.")
            ok = await passkeys.check_assertion(uow, nx, credential, dict(ch.data), origin, user_id=user_id)
            if ok:
                await core.consume(uow, ch)
        elif password:
            method, amr = "password", ["pwd"]
            ok = _verify(pw_hash or _DUMMY_HASH, str(password)) and bool(pw_hash)
        else:
            raise Problem(400, "Send password, otp, recovery_code or credential.")
        if ok:
            await uow.conn.execute("UPDATE identity_session SET auth_time = ?, amr = ? WHERE id = ?",
                                   [uow.db.ts(uow.now), uow.db.json(amr), principal.session_id])
            await core.record_sign_in(uow, user_id, f"step_up:{method}", True, None, user_agent, principal.session_id)
            uow.audit("identity", "sessions", principal.session_id, "stepped_up", None, {"method": method})
    if not ok:
        async with UnitOfWork(signin.db, ctx) as uow:
            failed = await core.count_account_failure(uow, user_id)
            await core.record_sign_in(uow, user_id, f"step_up:{method}", False, "wrong credential", user_agent,
                                      principal.session_id)
            uow.audit("identity", "sessions", principal.session_id, "step_up_failed", None,
                      {"method": method, "failed_logins": failed})
        raise Problem(400, "That did not match; try again.", type="step-up-failed", title="Step-up failed")
    async with UnitOfWork(signin.db, ctx) as uow:
        await uow.conn.execute("UPDATE identity_user SET failed_logins = 0 WHERE id = ?", [user_id])
    _invalidate()
    return {"auth_time": int(time.time()), "amr": amr}

