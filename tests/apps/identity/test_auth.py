"""Sign-in over HTTP: the OAuth 2.0 token endpoint, refresh rotation, logout and revocation,
lockout, access-token checks and the signed-in user's profile."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

import httpx
import jwt
import pytest

from nexus.apps.identity import service
from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import utcnow
from tests.factories import (
    PASSWORD,
    Actor,
    audit_rows,
    client_at,
    forge_token,
    make_api_key,
    new_org,
    sign_in,
    token_for,
    with_credential,
)

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/identity/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in r.text
    return body


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": token})


async def set_user(nx: Nexus, user_id: str, **values: object) -> None:
    """Change a user row directly (to move lockout times into the past)."""
    sets = ", ".join(f"{k} = ?" for k in values)
    params = [nx.db.ts(v) if hasattr(v, "tzinfo") else v for v in values.values()]
    async with nx.db.transaction() as conn:
        await conn.execute(f"UPDATE identity_user SET {sets} WHERE id = ?", [*params, user_id])


async def user_row(nx: Nexus, user_id: str) -> tuple:
    async with nx.db.reader() as conn:
        row = await conn.fetchrow("SELECT failed_logins, locked_until, last_login_at, status FROM identity_user"
                                  " WHERE id = ?", [user_id])
    assert row is not None
    return tuple(row)


# -- the password grant -------------------------------------------------------------------


async def test_password_grant_returns_oauth_tokens(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await token_for(client, owner.email, org=owner.org_slug)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == nx.settings.access_token_ttl
    assert body["refresh_token"].startswith("nxr_")
    assert r.headers["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == owner.user_id and claims["org"] == owner.org_id and claims["iss"] == "nexus"
    assert claims["exp"] - claims["iat"] == nx.settings.access_token_ttl
    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == owner.user_id


async def test_email_is_case_insensitive_and_org_is_optional(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await token_for(client, "  " + owner.email.upper() + " ")
    assert r.status_code == 200, r.text


async def test_password_grant_accepts_json_too(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await client.post(TOKEN, json={"grant_type": "password", "username": owner.email, "password": PASSWORD})
    assert r.status_code == 200, r.text


async def test_same_email_in_two_orgs_needs_org(client: httpx.AsyncClient, nx: Nexus) -> None:
    a = await new_org(client, nx)
    b = await new_org(client, nx)
    email = f"shared-{secrets.token_hex(4)}@example.test"
    await a.add_user(["member"], email=email)
    await b.add_user(["viewer"], email=email)
    r = await token_for(client, email)
    body = assert_problem(r, 400)
    assert body["error"] == "invalid_request"
    for org in (a, b):
        r = await token_for(client, email, org=org.org_slug)
        assert r.status_code == 200, r.text
        me = (await client.get(ME, headers=bearer(r.json()["access_token"]))).json()
        assert me["org"]["id"] == org.org_id


async def test_wrong_password_and_unknown_user_look_alike(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    async with client_at(nx) as c:
        wrong = await token_for(c, owner.email, "not the password", org=owner.org_slug)
        unknown = await token_for(c, f"nobody-{secrets.token_hex(3)}@example.test", "whatever12")
        no_org = await token_for(c, owner.email, org="no-such-org")
    bodies = [assert_problem(r, 400) for r in (wrong, unknown, no_org)]
    for b in bodies:
        assert b["error"] == "invalid_grant"
        assert b["detail"] == bodies[0]["detail"]
    assert "access_token" not in wrong.text


async def test_bad_token_requests_are_400(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    cases = [
        ({"grant_type": "password", "username": owner.email}, "invalid_request"),
        ({"grant_type": "password", "password": PASSWORD}, "invalid_request"),
        ({"grant_type": "password", "username": "x" * 400, "password": PASSWORD}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({}, "invalid_request"),
        ({"username": "x", "password": "y"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "nxr_" + "x" * 300}, "invalid_request"),
    ]
    async with client_at(nx) as c:
        for data, error in cases:
            r = await c.post(TOKEN, data=data)
            assert assert_problem(r, 400)["error"] == error, (data, r.text)
        r = await c.post(TOKEN, content=b"grant_type=password&grant_type=password",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert_problem(r, 400)
        r = await c.post(TOKEN, content=b"grant_type=password", headers={"Content-Type": "text/plain"})
        assert_problem(r, 415)
        r = await c.post(TOKEN, content=b"\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert_problem(r, 400)
        r = await c.post(TOKEN, json={"grant_type": "password", "username": owner.email, "password": 12345678})
        assert_problem(r, 400)


async def test_invited_user_cannot_sign_in(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    email = f"invited-{secrets.token_hex(3)}@{owner.org_slug}.test"
    r = await owner.post("/api/v1/identity/users", json={"email": email, "name": "Invited"})
    assert r.status_code == 201 and r.json()["status"] == "invited"
    async with client_at(nx) as c:
        r = await token_for(c, email, "anything-at-all", org=owner.org_slug)
    assert assert_problem(r, 400)["detail"] == "Wrong email or password."


async def test_deactivated_user_learns_nothing_without_the_password(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    assert (await owner.post(f"/api/v1/identity/users/{member.user_id}/deactivate")).status_code == 200
    async with client_at(nx) as c:
        wrong = await token_for(c, member.email, "not the password", org=owner.org_slug)
        right = await token_for(c, member.email, org=owner.org_slug)
    # Only the right password may reveal that the account exists and is deactivated.
    assert assert_problem(wrong, 400)["detail"] == "Wrong email or password."
    assert assert_problem(right, 400)["detail"] == "This account is not active."


async def test_sign_ins_and_failures_are_audited(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    async with client_at(nx, "192.0.2.77") as c:
        r = await token_for(c, member.email, "wrong password!", org=owner.org_slug)
        assert r.status_code == 400
        r = await token_for(c, member.email, org=owner.org_slug)
        assert r.status_code == 200
    rows = await audit_rows(nx, owner.org_id, record_id=member.user_id)
    actions = [r["action"] for r in rows]
    assert actions.count("signed_in") == 2  # add_user signed in once, and the one above
    failed = [r for r in rows if r["action"] == "sign_in_failed"]
    assert len(failed) == 1
    assert failed[0]["after"]["email"] == member.email
    assert failed[0]["client_addr"] == "192.0.2.77"
    signed = [r for r in rows if r["action"] == "signed_in"][-1]
    assert signed["actor_id"] == member.user_id and signed["client_addr"] == "192.0.2.77"
    assert "password" not in str(failed[0]["after"]).replace("wrong password", "")
    _, _, last_login, _ = await user_row(nx, member.user_id)
    assert last_login is not None


# -- lockout ------------------------------------------------------------------------------


async def test_account_lockout_backs_off_and_clears_on_success(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    n = service.MAX_FAILED_BEFORE_LOCK
    async with client_at(nx) as c:
        for _ in range(n):
            r = await token_for(c, member.email, "wrong password", org=owner.org_slug)
            assert_problem(r, 400)
        # Locked: even the right password is refused, with a hint when to retry.
        r = await token_for(c, member.email, org=owner.org_slug)
        assert_problem(r, 429)
        first_wait = int(r.headers["retry-after"])
        assert 0 < first_wait <= service.LOCK_BASE_SECONDS + 1
        assert (await user_row(nx, member.user_id))[0] == n

    # The lock runs out; the next failure locks again, for twice as long.
    await set_user(nx, member.user_id, locked_until=utcnow() - timedelta(seconds=1))
    async with client_at(nx) as c:
        r = await token_for(c, member.email, "wrong again", org=owner.org_slug)
        assert_problem(r, 400)
        r = await token_for(c, member.email, "wrong again", org=owner.org_slug)
        assert_problem(r, 429)
        second_wait = int(r.headers["retry-after"])
        assert service.LOCK_BASE_SECONDS < second_wait <= 2 * service.LOCK_BASE_SECONDS + 1

    await set_user(nx, member.user_id, locked_until=utcnow() - timedelta(seconds=1))
    async with client_at(nx) as c:
        r = await token_for(c, member.email, org=owner.org_slug)
        assert r.status_code == 200, r.text
    failed, locked_until, _, _ = await user_row(nx, member.user_id)
    assert failed == 0 and locked_until is None
    reasons = [r["after"]["reason"] for r in await audit_rows(nx, owner.org_id, action="sign_in_failed",
                                                               record_id=member.user_id)]
    assert "locked" in reasons


async def test_lockout_is_capped(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    await set_user(nx, member.user_id, failed_logins=60)
    async with client_at(nx) as c:
        r = await token_for(c, member.email, "wrong password", org=owner.org_slug)
        assert_problem(r, 400)
        r = await token_for(c, member.email, "wrong password", org=owner.org_slug)
        assert_problem(r, 429)
        assert int(r.headers["retry-after"]) <= service.LOCK_MAX_SECONDS + 1


async def test_concurrent_failures_all_count(client: httpx.AsyncClient, nx: Nexus) -> None:
    import asyncio

    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    async with client_at(nx) as c:
        results = await asyncio.gather(*[token_for(c, member.email, f"wrong-{i}-password", org=owner.org_slug)
                                         for i in range(4)])
    assert all(r.status_code == 400 for r in results)
    assert (await user_row(nx, member.user_id))[0] == 4


async def test_lockout_per_client_address(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    async with client_at(nx) as c:
        for i in range(service.ADDR_MAX_FAILURES):
            r = await token_for(c, f"guess-{i}@{owner.org_slug}.test", "password-guess")
            assert r.status_code == 400, (i, r.text)
        # The address is refused now, even with right credentials...
        r = await token_for(c, owner.email, org=owner.org_slug)
        body = assert_problem(r, 429)
        assert body["error"] == "invalid_grant"
        assert int(r.headers["retry-after"]) == service.ADDR_WINDOW_SECONDS
    # ...but the account is not locked: another address signs in.
    async with client_at(nx) as other:
        assert (await token_for(other, owner.email, org=owner.org_slug)).status_code == 200


# -- refresh tokens -----------------------------------------------------------------------


async def test_refresh_rotates_the_token(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await refresh(client, owner.refresh_token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["refresh_token"] != owner.refresh_token
    assert r.headers["cache-control"] == "no-store"
    assert (await client.get(ME, headers=bearer(body["access_token"]))).status_code == 200
    r2 = await refresh(client, body["refresh_token"])
    assert r2.status_code == 200, r2.text
    claims = [jwt.decode(t, options={"verify_signature": False}) for t in (owner.token, body["access_token"])]
    assert claims[0]["sid"] == claims[1]["sid"]


async def test_reused_refresh_token_ends_the_whole_session(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    first = (await refresh(client, owner.refresh_token)).json()
    second = (await refresh(client, first["refresh_token"])).json()
    # An attacker replays the first (already rotated) refresh token:
    async with client_at(nx) as c:
        r = await refresh(c, owner.refresh_token)
    assert assert_problem(r, 400)["error"] == "invalid_grant"
    # Every token of the family is dead now, the newest included.
    assert_problem(await refresh(client, second["refresh_token"]), 400)
    for access in (owner.token, first["access_token"], second["access_token"]):
        assert_problem(await client.get(ME, headers=bearer(access)), 401)
    rows = await audit_rows(nx, owner.org_id, action="refresh_token_reused")
    assert len(rows) == 1
    # Other sessions of the same person carry on.
    other = await sign_in(client, nx, owner.email, owner.org_slug)
    assert (await other.get(ME)).status_code == 200


async def test_concurrent_use_of_one_refresh_token_ends_the_session(client: httpx.AsyncClient, nx: Nexus) -> None:
    import asyncio

    owner = await new_org(client, nx)
    results = await asyncio.gather(*[refresh(client, owner.refresh_token) for _ in range(3)])
    codes = sorted(r.status_code for r in results)
    assert codes[0] == 200 and all(c == 400 for c in codes[1:]), codes
    winner = next(r for r in results if r.status_code == 200).json()
    assert_problem(await refresh(client, winner["refresh_token"]), 400)
    assert_problem(await client.get(ME, headers=bearer(winner["access_token"])), 401)


async def test_invalid_refresh_tokens(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    token_id = owner.refresh_token[4:30]
    for bad in ("garbage", "nxr_", "nxr_short_x", f"nxr_{token_id}_wrongsecret", owner.token[:190],
                "nxr_" + "0" * 26 + "_secret"):
        r = await refresh(client, bad)
        assert assert_problem(r, 400)["error"] in ("invalid_grant", "invalid_request"), bad
    # Guessing a secret is not a reuse: the real token still works.
    assert (await refresh(client, owner.refresh_token)).status_code == 200


async def test_refresh_fails_for_deactivated_user_and_expired_session(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    assert (await owner.post(f"/api/v1/identity/users/{member.user_id}/deactivate")).status_code == 200
    assert_problem(await refresh(client, member.refresh_token), 400)

    other = await owner.add_user(["member"])
    sid = jwt.decode(other.token, options={"verify_signature": False})["sid"]
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE identity_session SET expires_at = ? WHERE id = ?",
                           [nx.db.ts(utcnow() - timedelta(seconds=5)), sid])
    nx.auth.invalidate_all()
    assert_problem(await refresh(client, other.refresh_token), 400)
    assert_problem(await other.get(ME), 401)


# -- logout and revocation ----------------------------------------------------------------


async def test_logout_ends_only_this_session(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    laptop = await sign_in(client, nx, owner.email, owner.org_slug)
    r = await owner.post("/api/v1/auth/logout")
    assert r.status_code == 204, r.text
    assert_problem(await owner.get(ME), 401)
    assert_problem(await refresh(client, owner.refresh_token), 400)
    assert_problem(await owner.post("/api/v1/auth/logout"), 401)
    assert (await laptop.get(ME)).status_code == 200
    assert [r["action"] for r in await audit_rows(nx, owner.org_id, action="signed_out")] == ["signed_out"]


async def test_logout_needs_a_session(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    assert_problem(await client.post("/api/v1/auth/logout"), 401)
    key = await make_api_key(owner)
    assert_problem(await with_credential(owner, key["key"]).post("/api/v1/auth/logout"), 400)


async def test_revoke_refresh_token_rfc7009(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await client.post("/api/v1/auth/revoke", data={"token": owner.refresh_token,
                                                       "token_type_hint": "refresh_token"})
    assert r.status_code == 200, r.text
    assert_problem(await refresh(client, owner.refresh_token), 400)
    assert_problem(await owner.get(ME), 401)
    # Revoking again, or revoking something unknown, is not an error (RFC 7009 §2.2).
    for tok in (owner.refresh_token, "nxr_" + "0" * 26 + "_nope", "nxr_bad", "something-else", "nxk_x_y"):
        r = await client.post("/api/v1/auth/revoke", data={"token": tok})
        assert r.status_code == 200, (tok, r.text)
    assert_problem(await client.post("/api/v1/auth/revoke", data={}), 400)


async def test_revoke_access_token_ends_its_session(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await client.post("/api/v1/auth/revoke", data={"token": owner.token, "token_type_hint": "access_token"})
    assert r.status_code == 200
    assert_problem(await owner.get(ME), 401)
    assert_problem(await refresh(client, owner.refresh_token), 400)


async def test_revoke_wrong_secret_changes_nothing(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    forged = owner.refresh_token[:31] + "not-the-secret"
    assert (await client.post("/api/v1/auth/revoke", data={"token": forged})).status_code == 200
    assert (await owner.get(ME)).status_code == 200
    assert (await refresh(client, owner.refresh_token)).status_code == 200


# -- access tokens that must be refused ----------------------------------------------------


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_bad_access_tokens_are_401_problems(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    now = int(time.time())
    tokens = {
        "expired": forge_token(nx, owner, iat=now - 1000, exp=now - 10),
        "wrong key": forge_token(nx, owner, key=secrets.token_bytes(32)),
        "alg none": jwt.encode(jwt.decode(owner.token, options={"verify_signature": False}), None, algorithm="none"),
        "HS512 with the right key": forge_token(nx, owner, algorithm="HS512"),
        "wrong issuer": forge_token(nx, owner, iss="someone-else"),
        "no issuer": forge_token(nx, owner, drop=("iss",)),
        "no session": forge_token(nx, owner, drop=("sid",)),
        "no expiry": forge_token(nx, owner, drop=("exp",)),
        "refresh typ": forge_token(nx, owner, typ="refresh"),
        "unknown session": forge_token(nx, owner, sid="0" * 26),
        "other org": forge_token(nx, owner, org="0" * 26),
        "other user": forge_token(nx, owner, sub="0" * 26),
        "truncated": owner.token[:-5],
        "garbage": "not.a.token",
    }
    for why, tok in tokens.items():
        r = await client.get(ME, headers=bearer(tok))
        assert_problem(r, 401)
        assert r.headers.get("www-authenticate", "").startswith("Bearer"), why
        r = await client.get("/api/v1/identity/users", headers=bearer(tok))
        assert r.status_code == 401, why
    assert "expired" in (await client.get(ME, headers=bearer(tokens["expired"]))).json()["detail"]
    # The real token, signed with the real key, still works.
    assert (await client.get(ME, headers=bearer(forge_token(nx, owner)))).status_code == 200


async def test_malformed_authorization_headers(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    for value in (owner.token, f"Basic {owner.token}", "Bearer", "Bearer ", f"Token {owner.token}"):
        r = await client.get(ME, headers={"Authorization": value})
        assert_problem(r, 401)


async def test_revoked_session_token_is_refused_at_once(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    assert (await member.get(ME)).status_code == 200  # cached now
    assert (await owner.post(f"/api/v1/identity/users/{member.user_id}/deactivate")).status_code == 200
    assert_problem(await member.get(ME), 401)


# -- who am I -------------------------------------------------------------------------------


async def test_me_describes_the_caller(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    viewer = await owner.add_user(["viewer"])
    me = (await viewer.get(ME)).json()
    assert me["id"] == viewer.user_id and me["email"] == viewer.email and me["status"] == "active"
    assert me["org"] == {"id": owner.org_id, "slug": owner.org_slug, "name": me["org"]["name"]}
    assert me["roles"] == ["viewer"]
    assert set(me["permissions"]) == set(service.BUILTIN_ROLES["viewer"][1])
    assert me["auth"]["kind"] == "user" and me["auth"]["session_id"]
    assert me["last_login_at"] is not None
    for secret in ("password_hash", "failed_logins", "locked_until", "secret_hash"):
        assert secret not in me
    assert "$argon2" not in (await viewer.get(ME)).text
    assert_problem(await client.get(ME), 401)


async def test_me_with_an_api_key(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member: Actor = await owner.add_user(["member"])
    key = await make_api_key(member, ["identity.users.read"])
    for headers in (bearer(key["key"]), {"X-API-Key": key["key"]}):
        r = await client.get(ME, headers=headers)
        assert r.status_code == 200, r.text
        me = r.json()
        assert me["id"] == member.user_id
        assert me["auth"] == {"kind": "api_key", "session_id": None, "api_key_id": key["id"]}
        assert me["permissions"] == ["identity.users.read"]


async def test_setup_status_is_public(client: httpx.AsyncClient, nx: Nexus) -> None:
    await new_org(client, nx)
    r = await client.get("/api/v1/auth/status")
    assert r.status_code == 200 and r.json() == {"initialised": True}


@pytest.mark.parametrize("path", ["/api/v1/auth/token", "/api/v1/auth/revoke"])
async def test_token_endpoints_refuse_get(client: httpx.AsyncClient, nx: Nexus, path: str) -> None:
    r = await client.get(path)
    assert_problem(r, 405)
