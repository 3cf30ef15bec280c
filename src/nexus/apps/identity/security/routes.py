"""HTTP routes of multi-factor sign-in and account security. Thin: they parse, check who is
asking, and call security/*.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.auth import require_recent_auth
from nexus.kernel.context import Context, Principal
from nexus.kernel.errors import Problem
from nexus.kernel.http.app import client_addr, nexus_of, read_body, require_json
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.jsonutil import loads, utcnow
from nexus.kernel.permissions import require
from nexus.kernel.query import fetch_page
from nexus.kernel.records import TableSpec, UnitOfWork

from . import core, mfa, passkeys, policy, reset
from .models import SignInEvent

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SIGNINS = TableSpec(SignInEvent)


def _ua(req: Request) -> str | None:
    return req.headers.get("user-agent")


async def _json(req: Request, limit: int = 32_768) -> dict[str, Any]:
    require_json(req)
    body = await read_body(req, limit)
    if not body.strip():
        return {}
    try:
        data = loads(body)
    except ValueError:
        raise Problem(400, "The body is not valid JSON.", type="malformed-json") from None
    if not isinstance(data, dict):
        raise Problem(400, "The body must be a JSON object.")
    return data


def _str(body: dict[str, Any], key: str, *, required: bool = True, max_len: int = 1024) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise Problem(422, f"{key} is required.", errors=[{"pointer": f"/{key}", "detail": "required"}])
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise Problem(422, f"{key} must be a string of at most {max_len} characters.",
                      errors=[{"pointer": f"/{key}", "detail": "invalid"}])
    return value


def _signin(req: Request) -> Any:
    return nexus_of(req).state["identity.signin"]


async def _user_principal(req: Request) -> Principal:
    p = await nexus_of(req).principal(req)
    if p.kind != "user" or p.session_id is None:
        raise Problem(403, "Only a signed-in person manages their account security; API keys cannot.")
    return p


async def _step_up_needed(req: Request, p: Principal, action: str) -> None:
    async with nexus_of(req).db.reader() as conn:
        pol = await policy.load(conn, p.org_id)
    require_recent_auth(p, pol.step_up_max_age, action=action)


def _ctx(req: Request, p: Principal) -> Context:
    return Context(p, req.scope.get("nexus.request_id"), client_addr(req))


# -- OAuth token grants and the MFA step -------------------------------------------------------


def mfa_problem(out: dict[str, Any]) -> Problem:
    """The password grant's answer for a user with MFA (the shape Auth0 and others use: an OAuth
    error carrying the token for the second step)."""
    if out.get("mfa_enrollment_required"):
        return Problem(403, "Your organisation requires a second factor: enrol one to finish signing in.",
                       type="mfa-enrollment-required", title="Second factor required", headers=NO_STORE,
                       extra={"error": "mfa_required", **out})
    return Problem(403, "Enter the code from your authenticator app, a recovery code, or use a passkey.",
                   type="mfa-required", title="Second factor required", headers=NO_STORE,
                   extra={"error": "mfa_required", **out})


async def _finish(req: Request, fields: dict[str, Any]) -> dict[str, Any]:
    token = fields.get("mfa_token")
    if not isinstance(token, str) or not token:
        raise Problem(400, "mfa_token is required.", extra={"error": "invalid_request"})
    credential = fields.get("credential")
    return await mfa.finish(  # type: ignore[no-any-return]
        _signin(req), nexus_of(req), token, otp=_opt(fields, "otp"), recovery_code=_opt(fields, "recovery_code"),
        credential=credential, origin=passkeys.relying_party(req), client_addr=client_addr(req), user_agent=_ua(req))


def _opt(fields: dict[str, Any], key: str) -> str | None:
    v = fields.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str) or len(v) > 64:
        raise Problem(400, f"{key} is invalid.", extra={"error": "invalid_request"})
    return v


async def _passkey_sign_in(req: Request, fields: dict[str, Any]) -> dict[str, Any]:
    """Usernameless sign-in: the passkey names its user."""
    nx = nexus_of(req)
    token = fields.get("challenge_token")
    credential = fields.get("credential")
    if not isinstance(token, str) or not credential:
        raise Problem(400, "challenge_token and credential are required.", extra={"error": "invalid_request"})
    ch = await core.load_challenge(nx.db, token, "webauthn_login")
    rp = passkeys.relying_party(req)
    async with nx.db.reader() as conn:
        found = await passkeys.find_credential(conn, credential)
    refused = Problem(400, "The passkey was not accepted.", type="invalid-grant", title="Sign-in failed",
                      extra={"error": "invalid_grant", "error_description": "passkey not accepted"})
    if found is None:
        raise refused
    _fid, org_id, user_id = found
    async with nx.db.reader() as conn:
        row = await conn.fetchrow("SELECT status, deleted_at FROM identity_user WHERE id = ?", [user_id])
    wait = await core.account_locked(nx.db, user_id)
    ctx = Context(Principal(user_id=user_id, org_id=org_id, kind="user"), None, client_addr(req))
    state = dict(ch.data)
    ok = False
    async with UnitOfWork(nx.db, ctx) as uow:
        if row is None or row[1] is not None or row[0] != "active" or wait is not None:
            reason = "locked" if wait is not None else "account not active"
            uow.audit("identity", "users", user_id, "sign_in_failed", None, {"method": "passkey", "reason": reason})
            await core.record_sign_in(uow, user_id, "passkey", False, reason, _ua(req))
        else:
            ok = await passkeys.check_assertion(uow, nx, credential, state, rp, user_id=None)
            if ok:
                await core.consume(uow, ch)
            else:
                await core.record_sign_in(uow, user_id, "passkey", False, "assertion refused", _ua(req))
    if not ok:
        raise refused
    amr = ["hwk", "user", "mfa"] if state.get("user_verified") else ["hwk"]
    return await _signin(req).open_session(user_id, org_id, client_addr(req), _ua(req), amr=amr,  # type: ignore[no-any-return]
                                           method="passkey")


async def grant_mfa(req: Request, form: dict[str, str]) -> Response:
    # The credential travels as a JSON string in the form; passkeys.py parses it.
    return json_response(await _finish(req, dict(form)), headers=NO_STORE)


async def grant_passkey(req: Request, form: dict[str, str]) -> Response:
    return json_response(await _passkey_sign_in(req, dict(form)), headers=NO_STORE)


GRANTS = {"mfa": grant_mfa, "passkey": grant_passkey}


async def mfa_totp_enrol(req: Request) -> Response:
    """During a sign-in the org forces to enrol: a TOTP seed and QR code."""
    body = await _json(req)
    out = await mfa.start_enrolment_at_sign_in(_signin(req), nexus_of(req), _str(body, "mfa_token", max_len=200) or "")
    return json_response(out, headers=NO_STORE)


async def mfa_passkey_options(req: Request) -> Response:
    """WebAuthn options to finish the MFA step with one of the user's passkeys."""
    nx = nexus_of(req)
    body = await _json(req)
    ch = await core.load_challenge(nx.db, _str(body, "mfa_token", max_len=200) or "", "mfa")
    async with nx.db.reader() as conn:
        options, state = await passkeys.authentication_options(conn, passkeys.relying_party(req), ch.org_id,
                                                               ch.user_id)
    if not options.get("allowCredentials"):
        raise Problem(409, "You have no passkey; use a code.")
    async with UnitOfWork(nx.db, Context(Principal(ch.user_id or "", ch.org_id or "", "user"))) as uow:
        await core.update_data(uow, ch, {**ch.data, "webauthn": state})
    return json_response({"options": options}, headers=NO_STORE)


async def passkey_options(req: Request) -> Response:
    """WebAuthn options for a usernameless passkey sign-in."""
    nx = nexus_of(req)
    async with nx.db.reader() as conn:
        options, state = await passkeys.authentication_options(conn, passkeys.relying_party(req), verify_user=True)
    async with UnitOfWork(nx.db, Context(Principal("anonymous", "", "system"))) as uow:
        token = await core.new_challenge(uow, "webauthn_login", org_id=None, user_id=None, data=state,
                                         ttl=passkeys.TIMEOUT_MS // 1000 + 60, client_addr=client_addr(req),
                                         user_agent=_ua(req))
    return json_response({"challenge_token": token, "options": options}, headers=NO_STORE)


# -- browser (cookie) variants -------------------------------------------------------------


async def session_mfa(req: Request) -> Response:
    """Browser: finish a sign-in with the second factor; sets the session cookies."""
    from ..session import _same_origin

    _same_origin(req)
    body = await _json(req)
    tokens = await _finish(req, body)
    return await _cookie_response(req, tokens)


async def session_passkey(req: Request) -> Response:
    """Browser: sign in with a passkey (no user name); sets the session cookies."""
    from ..session import _same_origin

    _same_origin(req)
    tokens = await _passkey_sign_in(req, await _json(req))
    return await _cookie_response(req, tokens)


async def _cookie_response(req: Request, tokens: dict[str, Any]) -> Response:
    from nexus.kernel.jsonutil import dumps

    from ..session import _set_cookies, _user_body

    user = await _user_body(req, tokens["access_token"])
    extra = b""
    if tokens.get("recovery_codes"):
        extra = b',"recovery_codes":' + dumps(tokens["recovery_codes"])
    resp = Response(b'{"user":' + user + extra + b"}", media_type="application/json", headers=NO_STORE)
    _set_cookies(req, resp, tokens)
    return resp


# -- step-up ------------------------------------------------------------------------------------


async def step_up(req: Request) -> Response:
    """Prove it is you again (password, or your second factor when you have one) for sensitive actions."""
    p = await _user_principal(req)
    body = await _json(req)
    out = await mfa.step_up(_signin(req), nexus_of(req), p, body, passkeys.relying_party(req), client_addr(req), _ua(req))
    return json_response(out, headers=NO_STORE)


async def step_up_passkey_options(req: Request) -> Response:
    p = await _user_principal(req)
    nx = nexus_of(req)
    async with nx.db.reader() as conn:
        options, state = await passkeys.authentication_options(conn, passkeys.relying_party(req), p.org_id, p.user_id)
    if not options.get("allowCredentials"):
        raise Problem(409, "You have no passkey.")
    async with UnitOfWork(nx.db, _ctx(req, p)) as uow:
        token = await core.new_challenge(uow, "webauthn_stepup", org_id=p.org_id, user_id=p.user_id, data=state,
                                         ttl=passkeys.TIMEOUT_MS // 1000 + 60)
    return json_response({"challenge_token": token, "options": options}, headers=NO_STORE)


# -- password reset -------------------------------------------------------------------------------


async def password_reset_request(req: Request) -> Response:
    """Mail a reset link if the address has an account; the answer is the same either way."""
    body = await _json(req)
    email = _str(body, "email", max_len=320) or ""
    await reset.request_reset(nexus_of(req), email, _str(body, "org", required=False, max_len=64), client_addr(req))
    return json_response({"detail": "If the address has an account, a reset link is on its way."}, status=202)


async def password_reset_confirm(req: Request) -> Response:
    body = await _json(req)
    token = _str(body, "token", max_len=200) or ""
    password = _str(body, "password") or ""
    await reset.confirm_reset(nexus_of(req), token, password, client_addr(req), _ua(req))
    return Response(status_code=204)


# -- the caller's account -----------------------------------------------------------------------------


async def account_security(req: Request) -> Response:
    """Your second factors, recovery codes left, the org's policy and when you last proved who you are."""
    p = await _user_principal(req)
    nx = nexus_of(req)
    async with nx.db.reader() as conn:
        factors = [f for f in await mfa.factors_of(conn, p.org_id, p.user_id) if f["kind"] != "totp"
                   or f["confirmed_at"] is not None]
        left = await mfa.recovery_codes_left(conn, p.org_id, p.user_id)
        pol = await policy.load(conn, p.org_id)
    return json_response({
        "mfa_enabled": bool(factors), "factors": factors, "recovery_codes_left": left, "policy": pol.public(),
        "auth_time": p.auth_time, "amr": list(p.amr), "password_reset_by_email": reset.available(nx)})


async def totp_start(req: Request) -> Response:
    p = await _user_principal(req)
    await _step_up_needed(req, p, "adding an authenticator")
    body = await _json(req)
    async with UnitOfWork(nexus_of(req).db, _ctx(req, p)) as uow:
        out = await mfa.start_totp(uow, nexus_of(req), p.user_id, p.email or "", _str(body, "name", required=False,
                                                                                       max_len=200))
    return json_response(out, status=201, headers=NO_STORE)


async def totp_confirm(req: Request) -> Response:
    p = await _user_principal(req)
    body = await _json(req)
    code = _str(body, "code", max_len=16) or ""
    wait = await core.account_locked(nexus_of(req).db, p.user_id)
    if wait is not None:
        raise Problem(429, "Too many failed attempts; wait and try again.", headers={"Retry-After": str(wait)})
    try:
        async with UnitOfWork(nexus_of(req).db, _ctx(req, p)) as uow:
            out = await mfa.confirm_totp(uow, nexus_of(req), p.user_id, req.path_params["factor_id"], code)
    except Problem as exc:
        if exc.status == 422:
            async with UnitOfWork(nexus_of(req).db, _ctx(req, p)) as uow:
                await core.count_account_failure(uow, p.user_id)
                uow.audit("identity", "mfa-factors", req.path_params["factor_id"], "totp_confirm_failed", None,
                          {"user_id": p.user_id})
        raise
    return json_response(out, headers=NO_STORE)


async def factor_remove(req: Request) -> Response:
    p = await _user_principal(req)
    await _step_up_needed(req, p, "removing a second factor")
    async with UnitOfWork(nexus_of(req).db, _ctx(req, p)) as uow:
        await mfa.remove_factor(uow, p.user_id, req.path_params["factor_id"])
    return Response(status_code=204)


async def recovery_codes(req: Request) -> Response:
    """New recovery codes (the old ones stop working); shown this once."""
    p = await _user_principal(req)
    await _step_up_needed(req, p, "replacing your recovery codes")
    async with UnitOfWork(nexus_of(req).db, _ctx(req, p)) as uow:
        methods = await mfa.active_methods(uow.conn, p.org_id, p.user_id)
        if not [m for m in methods if m != "recovery_code"]:
            raise Problem(409, "Set up an authenticator app or passkey first.")
        codes = await mfa.new_recovery_codes(uow, nexus_of(req), p.user_id)
    return json_response({"recovery_codes": codes}, status=201, headers=NO_STORE)


async def passkey_register_options(req: Request) -> Response:
    p = await _user_principal(req)
    await _step_up_needed(req, p, "adding a passkey")
    nx = nexus_of(req)
    async with UnitOfWork(nx.db, _ctx(req, p)) as uow:
        options, state = await passkeys.registration_options(uow, passkeys.relying_party(req), p.user_id,
                                                             p.email or "", p.name or "")
        token = await core.new_challenge(uow, "webauthn_register", org_id=p.org_id, user_id=p.user_id, data=state,
                                         ttl=passkeys.TIMEOUT_MS // 1000 + 60)
    return json_response({"challenge_token": token, "options": options}, headers=NO_STORE)


async def passkey_register(req: Request) -> Response:
    p = await _user_principal(req)
    nx = nexus_of(req)
    body = await _json(req)
    ch = await core.load_challenge(nx.db, _str(body, "challenge_token", max_len=200) or "", "webauthn_register",
                                   "passkey registration")
    if ch.user_id != p.user_id or ch.org_id != p.org_id:
        raise Problem(400, "This registration was started by someone else.")
    if not body.get("credential"):
        raise Problem(422, "credential is required.", errors=[{"pointer": "/credential", "detail": "required"}])
    try:
        async with UnitOfWork(nx.db, _ctx(req, p)) as uow:
            await core.consume(uow, ch)
            had = [m for m in await mfa.active_methods(uow.conn, p.org_id, p.user_id) if m != "recovery_code"]
            out = await passkeys.register(uow, ch.data, body["credential"], passkeys.relying_party(req), p.user_id,
                                          _str(body, "name", required=False, max_len=200) or "Passkey")
            if not had:
                out["recovery_codes"] = await mfa.new_recovery_codes(uow, nexus_of(req), p.user_id)
    except Problem as exc:
        if exc.type == "passkey-refused":
            async with UnitOfWork(nx.db, _ctx(req, p)) as uow:
                await core.consume(uow, ch)  # a refused ceremony is not retried with the same challenge
                uow.audit("identity", "mfa-factors", None, "passkey_registration_refused", None,
                          {"user_id": p.user_id, "reason": exc.detail[:200]})
        raise
    return json_response(out, status=201, headers=NO_STORE)


async def change_password(req: Request) -> Response:
    """Change your own password: the current one, a recent sign-in, and the org's policy."""
    from ..service import _DUMMY_HASH, _end_sessions, _invalidate, _verify, hasher

    p = await _user_principal(req)
    nx = nexus_of(req)
    body = await _json(req)
    current = _str(body, "current_password") or ""
    new = _str(body, "new_password") or ""
    await _step_up_needed(req, p, "changing your password")
    async with nx.db.reader() as conn:
        row = await conn.fetchrow("SELECT password_hash, email FROM identity_user WHERE id = ?", [p.user_id])
    if not _verify((row[0] if row else None) or _DUMMY_HASH, current) or not (row and row[0]):
        async with UnitOfWork(nx.db, _ctx(req, p)) as uow:
            await core.count_account_failure(uow, p.user_id)
            uow.audit("identity", "users", p.user_id, "password_change_refused", None, {"reason": "wrong password"})
        raise Problem(422, "The current password is wrong.",
                      errors=[{"pointer": "/current_password", "detail": "wrong password"}])
    async with UnitOfWork(nx.db, _ctx(req, p)) as uow:
        await policy.check_password(uow, p.user_id, row[1], new, pointer="/new_password")
        new_hash = hasher.hash(new)
        await uow.conn.execute("UPDATE identity_user SET password_hash = ?, failed_logins = 0 WHERE id = ?",
                               [new_hash, p.user_id])
        await policy.remember_password(uow, p.user_id, new_hash)
        await _end_sessions(uow, p.user_id, "password_changed", keep=p.session_id)
        uow.audit("identity", "users", p.user_id, "password_changed", None, {})
    _invalidate()
    return Response(status_code=204)


# -- sessions and history -------------------------------------------------------------------------


async def _sessions(req: Request, org_id: str, user_id: str, current: str | None) -> list[dict[str, Any]]:
    db = nexus_of(req).db
    async with db.reader() as conn:
        rows = await conn.fetch(
            "SELECT id, created_at, last_seen_at, expires_at, client_addr, user_agent, auth_time, amr"
            " FROM identity_session WHERE org_id = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > ?"
            " ORDER BY created_at DESC LIMIT 200", [org_id, user_id, db.ts(utcnow())])
    out = []
    for r in rows:
        amr = r[7] if isinstance(r[7], list) else loads(r[7]) if r[7] else []
        out.append({"id": r[0], "created_at": db.read_ts(r[1]), "last_seen_at": db.read_ts(r[2]),
                    "expires_at": db.read_ts(r[3]), "client_addr": r[4], "user_agent": r[5],
                    "auth_time": db.read_ts(r[6]), "amr": amr, "current": r[0] == current})
    return out


async def _end_session(req: Request, p: Principal, user_id: str, session_id: str, reason: str) -> None:
    from ..service import _invalidate

    async with UnitOfWork(nexus_of(req).db, _ctx(req, p)) as uow:
        n = await uow.conn.execute(
            "UPDATE identity_session SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND org_id = ?"
            " AND user_id = ? AND revoked_at IS NULL", [uow.db.ts(uow.now), reason, session_id, p.org_id, user_id])
        if not n:
            raise Problem(404, "No such session.")
        uow.audit("identity", "sessions", session_id, "revoked", None, {"user_id": user_id, "reason": reason})
    _invalidate()


async def my_sessions(req: Request) -> Response:
    p = await _user_principal(req)
    return json_response({"items": await _sessions(req, p.org_id, p.user_id, p.session_id)})


async def my_session_end(req: Request) -> Response:
    p = await _user_principal(req)
    await _end_session(req, p, p.user_id, req.path_params["session_id"], "revoked_by_user")
    return Response(status_code=204)


async def my_other_sessions_end(req: Request) -> Response:
    """End every session of yours but this one."""
    from ..service import _end_sessions, _invalidate

    p = await _user_principal(req)
    async with UnitOfWork(nexus_of(req).db, _ctx(req, p)) as uow:
        await _end_sessions(uow, p.user_id, "revoked_by_user", keep=p.session_id)
        uow.audit("identity", "sessions", None, "others_revoked", None, {"user_id": p.user_id})
    _invalidate()
    return Response(status_code=204)


async def _history(req: Request, org_id: str, user_id: str | None) -> Response:
    nx = nexus_of(req)
    params = parse_qs(req.url.query, keep_blank_values=True)
    if user_id is not None:
        params["user_id"] = [user_id]
    page = await fetch_page(nx.db, nx.cursors, SIGNINS, org_id, params,
                            filters=("user_id", "method", "success", "at", "client_addr"), sorts=("at",),
                            default_sort="-at")
    return json_response(page)


async def my_sign_ins(req: Request) -> Response:
    p = await _user_principal(req)
    return await _history(req, p.org_id, p.user_id)


async def _target_user(req: Request, p: Principal) -> str:
    uid = req.path_params["user_id"]
    async with nexus_of(req).db.reader() as conn:
        found = await conn.fetchval("SELECT 1 FROM identity_user WHERE id = ? AND org_id = ?", [uid, p.org_id])
    if not found:
        raise Problem(404, "No such user.")
    return str(uid)


async def user_sessions(req: Request) -> Response:
    p = await nexus_of(req).principal(req)
    require(p, "identity.sessions.read")
    uid = await _target_user(req, p)
    return json_response({"items": await _sessions(req, p.org_id, uid, p.session_id)})


async def user_session_end(req: Request) -> Response:
    from ..service import _may_manage

    p = await nexus_of(req).principal(req)
    require(p, "identity.sessions.delete")
    uid = await _target_user(req, p)
    async with UnitOfWork(nexus_of(req).db, _ctx(req, p)) as uow:
        await _may_manage(uow, uid)
    await _end_session(req, p, uid, req.path_params["session_id"], "revoked_by_admin")
    return Response(status_code=204)


async def user_sign_ins(req: Request) -> Response:
    p = await nexus_of(req).principal(req)
    require(p, "identity.sign-ins.read")
    return await _history(req, p.org_id, await _target_user(req, p))


async def org_sign_ins(req: Request) -> Response:
    p = await nexus_of(req).principal(req)
    require(p, "identity.sign-ins.read")
    return await _history(req, p.org_id, None)


async def user_mfa_reset(req: Request) -> Response:
    """An admin removes a user's second factors (a lost phone); the user enrols again."""
    from ..service import _may_manage

    p = await nexus_of(req).principal(req)
    require(p, "identity.users.update")
    uid = await _target_user(req, p)
    await _step_up_needed(req, p, "resetting someone's second factors")
    async with UnitOfWork(nexus_of(req).db, _ctx(req, p)) as uow:
        await _may_manage(uow, uid)
        n = await uow.conn.execute("DELETE FROM identity_mfa_factor WHERE org_id = ? AND user_id = ?", [p.org_id, uid])
        await uow.conn.execute("DELETE FROM identity_recovery_code WHERE org_id = ? AND user_id = ?", [p.org_id, uid])
        uow.audit("identity", "users", uid, "mfa_reset", None, {"factors_removed": n})
    return Response(status_code=204)


# -- the org's policy -----------------------------------------------------------------------------


async def policy_get(req: Request) -> Response:
    p = await nexus_of(req).principal(req)
    async with nexus_of(req).db.reader() as conn:
        pol = await policy.load(conn, p.org_id)
    return json_response(pol.public())


async def policy_put(req: Request) -> Response:
    p = await nexus_of(req).principal(req)
    require(p, "identity.security-policy.update")
    changes = policy.validate_changes(await _json(req))
    await _step_up_needed(req, p, "changing the security policy")
    async with UnitOfWork(nexus_of(req).db, _ctx(req, p)) as uow:
        pol = await policy.save(uow, changes)
    return json_response(pol.public())


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": required or []}


A, ID = ("auth",), ("identity",)
ROUTES = [
    RouteDef("POST", "/api/v1/auth/mfa/totp", mfa_totp_enrol, public=True, tags=A,
             summary="Enrol an authenticator during a sign-in that requires one",
             request_schema=_obj({"mfa_token": "string"}, ["mfa_token"])),
    RouteDef("POST", "/api/v1/auth/mfa/passkey-options", mfa_passkey_options, public=True, tags=A,
             summary="WebAuthn options for the MFA step", request_schema=_obj({"mfa_token": "string"}, ["mfa_token"])),
    RouteDef("POST", "/api/v1/auth/passkey/options", passkey_options, public=True, tags=A,
             summary="WebAuthn options for a passkey sign-in (no user name)"),
    RouteDef("POST", "/api/v1/auth/session/mfa", session_mfa, public=True, tags=A,
             summary="Browser: finish sign-in with a second factor",
             request_schema=_obj({"mfa_token": "string", "otp": "string", "recovery_code": "string",
                                  "credential": "object"}, ["mfa_token"])),
    RouteDef("POST", "/api/v1/auth/session/passkey", session_passkey, public=True, tags=A,
             summary="Browser: sign in with a passkey",
             request_schema=_obj({"challenge_token": "string", "credential": "object"}, ["challenge_token", "credential"])),
    RouteDef("POST", "/api/v1/auth/step-up", step_up, tags=A, summary="Confirm it is you for sensitive actions",
             request_schema=_obj({"password": "string", "otp": "string", "recovery_code": "string",
                                  "challenge_token": "string", "credential": "object"})),
    RouteDef("POST", "/api/v1/auth/step-up/passkey-options", step_up_passkey_options, tags=A,
             summary="WebAuthn options for a step-up"),
    RouteDef("POST", "/api/v1/auth/password-reset", password_reset_request, public=True, tags=A, status=202,
             summary="Mail a password reset link", request_schema=_obj({"email": "string", "org": "string"}, ["email"])),
    RouteDef("POST", "/api/v1/auth/password-reset/confirm", password_reset_confirm, public=True, tags=A, status=204,
             summary="Set a new password with a reset link's token",
             request_schema=_obj({"token": "string", "password": "string"}, ["token", "password"])),
    RouteDef("GET", "/api/v1/identity/account/security", account_security, tags=ID, summary="Your account security"),
    RouteDef("POST", "/api/v1/identity/account/totp", totp_start, tags=ID, status=201,
             summary="Start enrolling an authenticator app (QR code)"),
    RouteDef("POST", "/api/v1/identity/account/totp/{factor_id}/confirm", totp_confirm, tags=ID,
             summary="Confirm an authenticator with its first code", request_schema=_obj({"code": "string"}, ["code"])),
    RouteDef("DELETE", "/api/v1/identity/account/factors/{factor_id}", factor_remove, tags=ID, status=204,
             summary="Remove a second factor"),
    RouteDef("POST", "/api/v1/identity/account/recovery-codes", recovery_codes, tags=ID, status=201,
             summary="Replace your recovery codes"),
    RouteDef("POST", "/api/v1/identity/account/passkeys/options", passkey_register_options, tags=ID,
             summary="WebAuthn options to register a passkey"),
    RouteDef("POST", "/api/v1/identity/account/passkeys", passkey_register, tags=ID, status=201,
             summary="Register a passkey",
             request_schema=_obj({"challenge_token": "string", "credential": "object", "name": "string"},
                                 ["challenge_token", "credential"])),
    RouteDef("POST", "/api/v1/identity/account/password", change_password, tags=ID, status=204,
             summary="Change your password",
             request_schema=_obj({"current_password": "string", "new_password": "string"},
                                 ["current_password", "new_password"])),
    RouteDef("GET", "/api/v1/identity/account/sessions", my_sessions, tags=ID, summary="Your active sessions"),
    RouteDef("DELETE", "/api/v1/identity/account/sessions", my_other_sessions_end, tags=ID, status=204,
             summary="End your other sessions"),
    RouteDef("DELETE", "/api/v1/identity/account/sessions/{session_id}", my_session_end, tags=ID, status=204,
             summary="End one of your sessions"),
    RouteDef("GET", "/api/v1/identity/account/sign-ins", my_sign_ins, tags=ID, summary="Your sign-in history"),
    RouteDef("GET", "/api/v1/identity/users/{user_id}/sessions", user_sessions, tags=ID, summary="A user's sessions"),
    RouteDef("DELETE", "/api/v1/identity/users/{user_id}/sessions/{session_id}", user_session_end, tags=ID, status=204,
             summary="End a user's session"),
    RouteDef("GET", "/api/v1/identity/users/{user_id}/sign-ins", user_sign_ins, tags=ID,
             summary="A user's sign-in history"),
    RouteDef("DELETE", "/api/v1/identity/users/{user_id}/mfa", user_mfa_reset, tags=ID, status=204,
             summary="Remove a user's second factors"),
    RouteDef("GET", "/api/v1/identity/sign-ins", org_sign_ins, tags=ID, summary="Sign-in history of the organisation"),
    RouteDef("GET", "/api/v1/identity/security-policy", policy_get, tags=ID, summary="The organisation's security policy"),
    RouteDef("PUT", "/api/v1/identity/security-policy", policy_put, tags=ID,
             summary="Change the organisation's security policy"),
]
