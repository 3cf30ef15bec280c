"""Active sessions and devices (listed and ended by the user and by admins), sign-in history,
and the org's password policy on create, set, change and reset."""

from __future__ import annotations

import httpx

from nexus.kernel.http.app import Nexus
from tests.apps.identity.mfa_helpers import ACCOUNT
from tests.factories import PASSWORD, audit_rows, client_at, new_org, sign_in, token_for

USERS = "/api/v1/identity/users"


async def test_users_see_and_end_their_own_sessions(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    async with client_at(nx, "203.0.113.77") as phone:
        r = await phone.post("/api/v1/auth/token", data={"grant_type": "password", "username": owner.email,
                                                         "password": PASSWORD, "org": owner.org_slug},
                             headers={"User-Agent": "NexusPhone/2.0 (Android)"})
        assert r.status_code == 200
        phone_token = r.json()["access_token"]
    sessions = (await owner.get(f"{ACCOUNT}/sessions")).json()["items"]
    assert len(sessions) == 2
    current = [s for s in sessions if s["current"]]
    other = next(s for s in sessions if not s["current"])
    assert len(current) == 1 and other["client_addr"] == "203.0.113.77"
    assert other["user_agent"] == "NexusPhone/2.0 (Android)" and other["created_at"] and other["last_seen_at"]
    assert other["amr"] == ["pwd"]
    r = await owner.request("DELETE", f"{ACCOUNT}/sessions/{other['id']}")
    assert r.status_code == 204
    assert (await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {phone_token}"})).status_code == 401
    assert (await owner.request("DELETE", f"{ACCOUNT}/sessions/{other['id']}")).status_code == 404
    assert [a["action"] for a in await audit_rows(nx, owner.org_id, record_id=other["id"])] == ["revoked"]
    # "Sign out everywhere else" keeps only this session.
    for _ in range(2):
        assert (await token_for(client, owner.email, org=owner.org_slug)).status_code == 200
    assert len((await owner.get(f"{ACCOUNT}/sessions")).json()["items"]) == 3
    assert (await owner.request("DELETE", f"{ACCOUNT}/sessions")).status_code == 204
    left = (await owner.get(f"{ACCOUNT}/sessions")).json()["items"]
    assert len(left) == 1 and left[0]["current"]


async def test_admins_manage_sessions_of_their_org_only(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user()
    other_org = await new_org(client, nx)
    sessions = (await owner.get(f"{USERS}/{member.user_id}/sessions")).json()["items"]
    assert len(sessions) == 1 and not sessions[0]["current"]
    # A member sees neither the owner's sessions nor their history; another org gets 404.
    assert (await member.get(f"{USERS}/{owner.user_id}/sessions")).status_code == 403
    assert (await member.get(f"{USERS}/{owner.user_id}/sign-ins")).status_code == 403
    assert (await member.get("/api/v1/identity/sign-ins")).status_code == 403
    assert (await other_org.get(f"{USERS}/{member.user_id}/sessions")).status_code == 404
    assert (await other_org.request("DELETE", f"{USERS}/{member.user_id}/sessions/{sessions[0]['id']}")).status_code == 404
    # A session id of someone else under the member's path is not found either.
    owner_sid = (await owner.get("/api/v1/identity/me")).json()["auth"]["session_id"]
    assert (await owner.request("DELETE", f"{USERS}/{member.user_id}/sessions/{owner_sid}")).status_code == 404
    assert (await member.request("DELETE", f"{USERS}/{owner.user_id}/sessions/{owner_sid}")).status_code == 403
    r = await owner.request("DELETE", f"{USERS}/{member.user_id}/sessions/{sessions[0]['id']}")
    assert r.status_code == 204
    assert (await member.get("/api/v1/identity/me")).status_code == 401
    assert (await audit_rows(nx, owner.org_id, record_id=sessions[0]["id"]))[-1]["after"]["reason"] == "revoked_by_admin"


async def test_sign_in_history_records_successes_and_failures(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    async with client_at(nx, "198.18.0.9") as c:
        r = await c.post("/api/v1/auth/token", data={"grant_type": "password", "username": owner.email,
                                                     "password": "not the password", "org": owner.org_slug},
                         headers={"User-Agent": "curl/8.0"})
        assert r.status_code == 400
    await sign_in(client, nx, owner.email, owner.org_slug)
    items = (await owner.get(f"{ACCOUNT}/sign-ins")).json()["items"]
    assert items[0]["success"] is True and items[0]["method"] == "password" and items[0]["session_id"]
    failed = [i for i in items if not i["success"]]
    assert failed and failed[0]["client_addr"] == "198.18.0.9" and failed[0]["user_agent"] == "curl/8.0"
    assert failed[0]["reason"] == "wrong password"
    # Filters and paging work as on every list.
    page = (await owner.get(f"{ACCOUNT}/sign-ins", params={"success": "false", "limit": 1})).json()
    assert len(page["items"]) == 1 and not page["items"][0]["success"]
    org = (await owner.get("/api/v1/identity/sign-ins", params={"limit": 500})).json()["items"]
    assert {i["user_id"] for i in org} == {owner.user_id}
    assert (await owner.get(f"{ACCOUNT}/sign-ins", params={"sort": "nope"})).status_code in (400, 422)


async def test_password_policy_on_create_set_and_change(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    assert (await owner.get("/api/v1/identity/security-policy")).json()["password_min_length"] == 10
    body = {"email": f"p@{owner.org_slug}.test", "name": "P"}
    for bad, reason in (("short12", "at least 8"), ("short1234", "at least 10"), ("iloveyou123", "common"), ("p@" + owner.org_slug + ".test", "email")):
        r = await owner.post(USERS, json={**body, "password": bad})
        assert r.status_code == 422 and reason in r.text, (bad, r.text)
    r = await owner.request("PUT", "/api/v1/identity/security-policy", json={"password_min_length": 16,
                                                                            "password_history": 2})
    assert r.status_code == 200
    r = await owner.post(USERS, json={**body, "password": "fifteen chars!!"})
    assert r.status_code == 422 and "at least 16" in r.text
    r = await owner.post(USERS, json={**body, "password": "sixteen chars!!!"})
    assert r.status_code == 201
    uid = r.json()["id"]
    r = await owner.post(f"{USERS}/{uid}/set-password", json={"password": "sixteen chars!!!"})
    assert r.status_code == 422 and "used recently" in r.text
    assert (await owner.post(f"{USERS}/{uid}/set-password", json={"password": "another 16 chars"})).status_code == 200
    # Changing your own: the current password is checked (and a wrong one counts as a failure).
    r = await owner.post(f"{ACCOUNT}/password", json={"current_password": "wrong one", "new_password": "a fine new passphrase"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/current_password"
    r = await owner.post(f"{ACCOUNT}/password", json={"current_password": PASSWORD, "new_password": "short"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/new_password"
    other = await token_for(client, owner.email, org=owner.org_slug)
    r = await owner.post(f"{ACCOUNT}/password", json={"current_password": PASSWORD, "new_password": "a fine new passphrase"})
    assert r.status_code == 204
    assert (await owner.get("/api/v1/identity/me")).status_code == 200  # this session stays
    other_token = other.json()["access_token"]
    r = await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {other_token}"})
    assert r.status_code == 401  # the others end
    assert (await token_for(client, owner.email, "a fine new passphrase", owner.org_slug)).status_code == 200
    assert await audit_rows(nx, owner.org_id, action="password_changed")


async def test_cleanup_removes_expired_challenges_and_old_history(client: httpx.AsyncClient, nx: Nexus) -> None:
    from datetime import timedelta
    from types import SimpleNamespace

    from nexus.apps.identity.security import CLEANUP_JOB, cleanup
    from nexus.kernel.jsonutil import utcnow

    assert CLEANUP_JOB in nx.state["jobs"].types and CLEANUP_JOB in nx.state["jobs"].schedules
    owner = await new_org(client, nx)
    await sign_in(client, nx, owner.email, owner.org_slug)
    r = await client.post("/api/v1/auth/passkey/options")
    fresh = r.json()["challenge_token"][4:30]
    stale = (await client.post("/api/v1/auth/passkey/options")).json()["challenge_token"][4:30]
    old = utcnow() - timedelta(days=400)
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE identity_signin_event SET at = ? WHERE org_id = ? AND id IN"
                           " (SELECT id FROM identity_signin_event WHERE org_id = ? ORDER BY id LIMIT 1)",
                           [nx.db.ts(old), owner.org_id, owner.org_id])
        await conn.execute("UPDATE identity_auth_challenge SET expires_at = ? WHERE id = ?", [nx.db.ts(old), stale])
    before = len((await owner.get(f"{ACCOUNT}/sign-ins", params={"limit": 500})).json()["items"])
    removed = await cleanup(SimpleNamespace(db=nx.db), {})
    assert removed["sign_ins"] >= 1
    after = len((await owner.get(f"{ACCOUNT}/sign-ins", params={"limit": 500})).json()["items"])
    assert after == before - 1
    async with nx.db.reader() as conn:
        assert await conn.fetchval("SELECT 1 FROM identity_auth_challenge WHERE id = ?", [fresh])
        assert not await conn.fetchval("SELECT 1 FROM identity_auth_challenge WHERE id = ?", [stale])
