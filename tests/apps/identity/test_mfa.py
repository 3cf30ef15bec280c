"""TOTP second factor, recovery codes, the MFA step of sign-in, step-up and the org's MFA policy."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pyotp

from nexus.kernel.crypto import SecretBox
from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import utcnow
from tests.apps.identity.mfa_helpers import (
    ACCOUNT,
    AuthenticatorApp,
    enrol_totp,
    mfa_grant,
    mfa_owner,
    password_step,
)
from tests.factories import PASSWORD, Actor, audit_rows, client_at, make_api_key, new_org, token_for


async def test_totp_enrolment_shows_a_qr_code_and_stores_the_seed_sealed(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await owner.post(f"{ACCOUNT}/totp", json={"name": "Phone"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["qr_svg"].startswith("data:image/svg+xml")
    uri = pyotp.parse_uri(body["otpauth_uri"])
    assert uri.secret == body["secret"] and uri.issuer == "NEXUS" and uri.name == owner.email
    async with nx.db.reader() as conn:
        sealed = await conn.fetchval("SELECT secret_sealed FROM identity_mfa_factor WHERE id = ?", [body["factor_id"]])
    assert body["secret"] not in sealed
    assert SecretBox(nx.settings.secret_key, "identity-totp").open(sealed) == body["secret"]
    # Not confirmed yet: the password alone still signs in.
    assert (await token_for(client, owner.email, org=owner.org_slug)).status_code == 200
    app = AuthenticatorApp(body["secret"])
    wrong = f"{(int(app.totp.now()) + 1) % 1_000_000:06d}"
    r = await owner.post(f"{ACCOUNT}/totp/{body['factor_id']}/confirm", json={"code": wrong})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/code"
    r = await owner.post(f"{ACCOUNT}/totp/{body['factor_id']}/confirm", json={"code": await app.code()})
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    async with nx.db.reader() as conn:
        hashes = [row[0] for row in await conn.fetch(
            "SELECT code_hash FROM identity_recovery_code WHERE user_id = ?", [owner.user_id])]
    assert len(hashes) == 10 and not set(hashes) & set(codes)
    sec = (await owner.get(f"{ACCOUNT}/security")).json()
    assert sec["mfa_enabled"] and sec["recovery_codes_left"] == 10 and sec["factors"][0]["kind"] == "totp"
    assert "secret" not in str(sec).lower()
    assert [a["action"] for a in await audit_rows(nx, owner.org_id, resource="mfa-factors")] == [
        "totp_enrolment_started", "totp_confirm_failed", "totp_enrolled"]
    # Confirming twice is a conflict, an unknown enrolment a 404.
    r = await owner.post(f"{ACCOUNT}/totp/{body['factor_id']}/confirm", json={"code": await app.code()})
    assert r.status_code == 409
    assert (await owner.post(f"{ACCOUNT}/totp/01HZZZZZZZZZZZZZZZZZZZZZZZ/confirm", json={"code": "123456"})).status_code == 404


async def test_sign_in_asks_for_the_second_factor_and_finishes_with_it(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner, app, _codes = await mfa_owner(client, nx)
    step = await password_step(client, owner)
    assert step["methods"] == ["totp", "recovery_code"]
    assert "access_token" not in step and step["mfa_token"].startswith("nxm_")
    assert step["expires_in"] == 300
    r = await mfa_grant(client, step["mfa_token"], otp=await app.code())
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    me = await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == owner.user_id
    async with nx.db.reader() as conn:
        amr = await conn.fetchval("SELECT amr FROM identity_session WHERE id = ?", [me.json()["auth"]["session_id"]])
    assert "otp" in str(amr) and "pwd" in str(amr)
    # The MFA token is single-use.
    r = await mfa_grant(client, step["mfa_token"], otp=await app.code())
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    signed_in = [a for a in await audit_rows(nx, owner.org_id, action="signed_in") if a["record_id"] == owner.user_id]
    assert signed_in[-1]["after"]["method"] == "totp"


async def test_a_used_totp_code_cannot_be_replayed(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner, app, _codes = await mfa_owner(client, nx)
    code = await app.code()
    assert (await mfa_grant(client, (await password_step(client, owner))["mfa_token"], otp=code)).status_code == 200
    step = await password_step(client, owner)
    r = await mfa_grant(client, step["mfa_token"], otp=code)
    assert r.status_code == 400 and "4 tries left" in r.json()["detail"]
    failures = await audit_rows(nx, owner.org_id, action="mfa_failed")
    assert failures and failures[-1]["after"]["method"] == "totp"
    # An older code than the last one used is refused too (the step moved on).
    assert (await mfa_grant(client, step["mfa_token"], otp=app.totp.at(time.time() - 30))).status_code == 400
    assert (await mfa_grant(client, step["mfa_token"], otp=await app.code())).status_code == 200


async def test_recovery_codes_are_single_use_and_can_be_replaced(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner, _app, codes = await mfa_owner(client, nx)
    r = await mfa_grant(client, (await password_step(client, owner))["mfa_token"], recovery_code=codes[0].upper())
    assert r.status_code == 200, r.text
    r = await mfa_grant(client, (await password_step(client, owner))["mfa_token"], recovery_code=codes[0])
    assert r.status_code == 400
    assert (await owner.get(f"{ACCOUNT}/security")).json()["recovery_codes_left"] == 9
    r = await owner.post(f"{ACCOUNT}/recovery-codes")
    assert r.status_code == 201
    fresh = r.json()["recovery_codes"]
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    r = await mfa_grant(client, (await password_step(client, owner))["mfa_token"], recovery_code=codes[1])
    assert r.status_code == 400  # the old set is gone
    r = await mfa_grant(client, (await password_step(client, owner))["mfa_token"], recovery_code=fresh[5])
    assert r.status_code == 200
    assert [a["action"] for a in await audit_rows(nx, owner.org_id, resource="recovery-codes")].count("used") == 2


async def test_totp_brute_force_burns_the_token_locks_the_account_and_is_audited(client: httpx.AsyncClient,
                                                                                   nx: Nexus) -> None:
    owner, app, _codes = await mfa_owner(client, nx)
    async with client_at(nx) as attacker:
        step = await password_step(attacker, owner)
        good = app.totp.now()
        for i in range(5):
            guess = f"{(int(good) + 1 + i) % 1_000_000:06d}"
            r = await mfa_grant(attacker, step["mfa_token"], otp=guess)
            assert r.status_code in (400, 429), r.text
        # The token is spent: even the right code does not finish this sign-in any more.
        r = await mfa_grant(attacker, step["mfa_token"], otp=await app.code())
        assert r.status_code in (400, 429)
        # The account is locked, for the password step too.
        r = await token_for(attacker, owner.email, org=owner.org_slug)
        assert r.status_code == 429 and "Retry-After" in r.headers
    failures = [a for a in await audit_rows(nx, owner.org_id, action="mfa_failed") if a["record_id"] == owner.user_id]
    assert len(failures) == 5 and failures[-1]["after"]["failed_logins"] == 5
    history = (await owner.get(f"{ACCOUNT}/sign-ins", params={"success": "false"})).json()["items"]
    assert sum(1 for h in history if h["method"] == "totp") == 5
    assert all(h["client_addr"] != "198.51.100.7" for h in history if h["method"] == "totp")


async def test_expired_foreign_and_malformed_mfa_tokens_are_refused(client: httpx.AsyncClient, nx: Nexus) -> None:
    alice, alice_app, _ = await mfa_owner(client, nx)
    _bob, bob_app, _ = await mfa_owner(client, nx)
    step = await password_step(client, alice)
    # Bob's valid code does not finish Alice's sign-in.
    r = await mfa_grant(client, step["mfa_token"], otp=await bob_app.code())
    assert r.status_code == 400
    cid = step["mfa_token"][4:30]
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE identity_auth_challenge SET expires_at = ? WHERE id = ?",
                           [nx.db.ts(utcnow() - timedelta(seconds=1)), cid])
    r = await mfa_grant(client, step["mfa_token"], otp=await alice_app.code())
    assert r.status_code == 400 and "expired" in r.json()["detail"]
    refused = await audit_rows(nx, alice.org_id, action="challenge_refused")
    assert refused[-1]["record_id"] == cid and refused[-1]["after"]["reason"] == "expired"
    forged = step["mfa_token"][:31] + "x" * 20
    for bad in ("", "nxm_", "nxm_short_x", forged, "x" * 300):
        r = await mfa_grant(client, bad, otp="123456")
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", bad
    reasons = [a["after"]["reason"] for a in await audit_rows(nx, alice.org_id, action="challenge_refused")]
    assert "wrong secret" in reasons
    step = await password_step(client, alice)
    r = await mfa_grant(client, step["mfa_token"], otp="123456", recovery_code="abcde-fghij")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = await mfa_grant(client, step["mfa_token"])
    assert r.status_code == 400
    r = await client.post("/api/v1/auth/token", data={"grant_type": "mfa", "otp": "123456"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # Nothing above ended in a session for Alice beyond her first.
    assert (await mfa_grant(client, step["mfa_token"], otp=await alice_app.code())).status_code == 200


async def _age_session(nx: Nexus, actor: Actor, seconds: int) -> None:
    me = (await actor.get("/api/v1/identity/me")).json()
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE identity_session SET auth_time = ? WHERE id = ?",
                           [nx.db.ts(utcnow() - timedelta(seconds=seconds)), me["auth"]["session_id"]])
    nx.auth.invalidate_all()


async def test_step_up_guards_sensitive_actions(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await make_api_key(owner)  # a fresh sign-in is recent enough
    await _age_session(nx, owner, 3600)
    r = await owner.post("/api/v1/identity/api-keys", json={"name": "late"})
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["type"].endswith("/step-up-required") and body["step_up"]["endpoint"] == "/api/v1/auth/step-up"
    assert 'insufficient_user_authentication' in r.headers["www-authenticate"]
    r = await owner.post(f"/api/v1/identity/users/{owner.user_id}/set-password", json={"password": "another long secret"})
    assert r.status_code == 403
    r = await owner.post("/api/v1/auth/step-up", json={"password": "not my password"})
    assert r.status_code == 400
    assert (await audit_rows(nx, owner.org_id, action="step_up_failed"))
    r = await owner.post("/api/v1/auth/step-up", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["amr"] == ["pwd"]
    assert (await owner.post("/api/v1/identity/api-keys", json={"name": "now"})).status_code == 201
    # With a second factor, the password alone no longer steps up.
    app, codes, fid = await enrol_totp(owner)
    await _age_session(nx, owner, 3600)
    assert (await owner.post("/api/v1/auth/step-up", json={"password": PASSWORD})).status_code == 400
    assert (await owner.request("DELETE", f"{ACCOUNT}/factors/{fid}")).status_code == 403
    assert (await owner.post("/api/v1/auth/step-up", json={"otp": "000000"})).status_code == 400
    r = await owner.post("/api/v1/auth/step-up", json={"otp": await app.code()})
    assert r.status_code == 200 and "otp" in r.json()["amr"]
    assert (await owner.request("DELETE", f"{ACCOUNT}/factors/{fid}")).status_code == 204
    assert not (await owner.get(f"{ACCOUNT}/security")).json()["mfa_enabled"]
    assert (await token_for(client, owner.email, org=owner.org_slug)).status_code == 200
    # An API key cannot step up (it has no person behind it to prove anything).
    key = (await make_api_key(owner))["key"]
    r = await client.post("/api/v1/auth/step-up", json={"password": PASSWORD}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403
    assert codes  # shown once at enrolment


async def test_org_policy_forces_enrolment_at_next_sign_in(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user()
    r = await member.request("PUT", "/api/v1/identity/security-policy", json={"require_mfa": True})
    assert r.status_code == 403
    for bad in ({"require_mfa": "yes"}, {"password_min_length": 4}, {"nope": 1}, {"step_up_max_age": 10}):
        r = await owner.request("PUT", "/api/v1/identity/security-policy", json=bad)
        assert r.status_code == 422, bad
    r = await owner.request("PUT", "/api/v1/identity/security-policy", json={"require_mfa": True})
    assert r.status_code == 200 and r.json()["require_mfa"] is True
    assert (await audit_rows(nx, owner.org_id, resource="security-policy"))[-1]["after"]["require_mfa"] is True
    r = await token_for(client, member.email, org=member.org_slug)
    assert r.status_code == 403
    step = r.json()
    assert step["mfa_enrollment_required"] is True and step["type"].endswith("/mfa-enrollment-required")
    r = await mfa_grant(client, step["mfa_token"], otp="123456")
    assert r.status_code == 400  # enrol first
    r = await client.post("/api/v1/auth/mfa/totp", json={"mfa_token": step["mfa_token"]})
    assert r.status_code == 200, r.text
    app = AuthenticatorApp(r.json()["secret"])
    r = await mfa_grant(client, step["mfa_token"], otp=await app.code())
    assert r.status_code == 200, r.text
    assert len(r.json()["recovery_codes"]) == 10
    step = await password_step(client, member)
    assert step["methods"] == ["totp", "recovery_code"]
    # The last factor cannot be removed while the org requires one.
    me = (await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}))
    fresh = Actor(client, member.email, member.user_id, member.org_id, member.org_slug, r.json()["access_token"],
                  r.json()["refresh_token"], nx)
    assert me.status_code == 200
    fid = (await fresh.get(f"{ACCOUNT}/security")).json()["factors"][0]["id"]
    assert (await fresh.request("DELETE", f"{ACCOUNT}/factors/{fid}")).status_code == 409
    # An admin can reset a member's factors (a lost phone); the member must enrol again.
    r = await owner.request("DELETE", f"/api/v1/identity/users/{member.user_id}/mfa")
    assert r.status_code == 204
    r = await token_for(client, member.email, org=member.org_slug)
    assert r.status_code == 403 and r.json()["mfa_enrollment_required"] is True
    assert (await member.request("DELETE", f"/api/v1/identity/users/{owner.user_id}/mfa")).status_code == 403


async def test_cookie_sign_in_with_the_mfa_step(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner, app, _ = await mfa_owner(client, nx)
    async with client_at(nx) as b:
        r = await b.post("/api/v1/auth/session", json={"username": owner.email, "password": PASSWORD,
                                                       "org": owner.org_slug})
        assert r.status_code == 200 and r.json()["mfa_required"] is True
        assert not list(b.cookies.jar)
        token = r.json()["mfa_token"]
        # Login CSRF: the second step from another site's page is refused as the first is.
        r = await b.post("/api/v1/auth/session/mfa", json={"mfa_token": token, "otp": await app.code()},
                         headers={"Origin": "https://evil.test"})
        assert r.status_code == 403 and r.json()["type"].endswith("/csrf")
        r = await b.post("/api/v1/auth/session/mfa", json={"mfa_token": token, "otp": await app.code()},
                         headers={"Origin": "http://nexus.test"})
        assert r.status_code == 200, r.text
        assert r.json()["user"]["id"] == owner.user_id
        assert {c.name for c in b.cookies.jar} == {"nexus_access", "nexus_refresh", "nexus_csrf"}
        assert (await b.get("/api/v1/identity/me")).status_code == 200
        r = await b.post("/api/v1/auth/session/mfa", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        # Account changes with the cookie need the CSRF header like every other write.
        r = await b.post(f"{ACCOUNT}/recovery-codes")
        assert r.status_code == 403 and r.json()["type"].endswith("/csrf")
        r = await b.post(f"{ACCOUNT}/recovery-codes", headers={"X-CSRF-Token": b.cookies.get("nexus_csrf") or ""})
        assert r.status_code == 201 and len(r.json()["recovery_codes"]) == 10
