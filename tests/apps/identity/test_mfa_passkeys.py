"""WebAuthn passkeys: registration, second factor, usernameless sign-in, step-up, and the
attacks (cloned authenticator, wrong origin or RP ID, replayed assertion, no user verification)."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx

from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import utcnow
from tests.apps.identity.mfa_helpers import ACCOUNT, mfa_grant, password_step
from tests.apps.identity.soft_authenticator import SoftAuthenticator
from tests.factories import Actor, audit_rows, client_at, new_org

ORIGIN = "http://nexus.test"


async def register_passkey(actor: Actor, device: SoftAuthenticator, name: str = "Laptop") -> dict:  # type: ignore[type-arg]
    r = await actor.post(f"{ACCOUNT}/passkeys/options")
    assert r.status_code == 200, r.text
    body = r.json()
    opts = body["options"]
    assert opts["rp"]["id"] == "nexus.test" and opts["authenticatorSelection"]["residentKey"] == "required"
    credential = device.create(opts, ORIGIN)
    r = await actor.post(f"{ACCOUNT}/passkeys", json={"challenge_token": body["challenge_token"],
                                                      "credential": credential, "name": name})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def usernameless(client: httpx.AsyncClient, device: SoftAuthenticator, **kw: object) -> httpx.Response:
    r = await client.post("/api/v1/auth/passkey/options")
    assert r.status_code == 200, r.text
    body = r.json()
    assert "allowCredentials" not in body["options"] or not body["options"]["allowCredentials"]
    assert body["options"]["userVerification"] == "required"
    origin = str(kw.pop("origin", ORIGIN))
    assertion = device.get(body["options"], origin, **kw)  # type: ignore[arg-type]
    return await client.post("/api/v1/auth/token", data={"grant_type": "passkey", "challenge_token": body["challenge_token"],
                                                          "credential": json.dumps(assertion)})


async def test_register_a_passkey_and_use_it_as_the_second_factor(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    device = SoftAuthenticator()
    out = await register_passkey(owner, device)
    assert out["kind"] == "webauthn" and len(out["recovery_codes"]) == 10
    sec = (await owner.get(f"{ACCOUNT}/security")).json()
    assert sec["mfa_enabled"] and sec["factors"][0]["name"] == "Laptop" and sec["factors"][0]["discoverable"]
    # Registering the same authenticator again is refused by the authenticator (excludeCredentials).
    r = await owner.post(f"{ACCOUNT}/passkeys/options")
    assert r.json()["options"]["excludeCredentials"]
    step = await password_step(client, owner)
    assert step["methods"] == ["webauthn", "recovery_code"]
    r = await client.post("/api/v1/auth/mfa/passkey-options", json={"mfa_token": step["mfa_token"]})
    assert r.status_code == 200, r.text
    options = r.json()["options"]
    assert len(options["allowCredentials"]) == 1
    assertion = device.get(options, ORIGIN)
    r = await mfa_grant(client, step["mfa_token"], credential=json.dumps(assertion))
    assert r.status_code == 200, r.text
    async with nx.db.reader() as conn:
        count = await conn.fetchval("SELECT sign_count FROM identity_mfa_factor WHERE id = ?", [out["id"]])
    assert count == 1
    assert (await audit_rows(nx, owner.org_id, action="passkey_registered"))


async def test_sign_in_with_a_passkey_and_no_user_name(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    device = SoftAuthenticator()
    await register_passkey(owner, device)
    r = await usernameless(client, device)
    assert r.status_code == 200, r.text
    me = (await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})).json()
    assert me["id"] == owner.user_id
    async with nx.db.reader() as conn:
        amr = await conn.fetchval("SELECT amr FROM identity_session WHERE id = ?", [me["auth"]["session_id"]])
    assert "hwk" in str(amr) and "mfa" in str(amr)
    # The browser variant sets the cookies, and refuses another site's page.
    async with client_at(nx) as b:
        r = await b.post("/api/v1/auth/passkey/options")
        body = r.json()
        assertion = device.get(body["options"], ORIGIN)
        r = await b.post("/api/v1/auth/session/passkey", json={"challenge_token": body["challenge_token"],
                                                               "credential": assertion},
                         headers={"Origin": "https://evil.test"})
        assert r.status_code == 403
        r = await b.post("/api/v1/auth/session/passkey", json={"challenge_token": body["challenge_token"],
                                                               "credential": assertion})
        assert r.status_code == 200, r.text
        assert r.json()["user"]["id"] == owner.user_id and b.cookies.get("nexus_access")
    history = (await owner.get(f"{ACCOUNT}/sign-ins", params={"method": "passkey"})).json()["items"]
    assert len(history) == 2 and all(h["success"] for h in history)


async def test_cloned_authenticator_wrong_origin_and_rp_id_are_refused(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    device = SoftAuthenticator()
    factor = await register_passkey(owner, device)
    assert (await usernameless(client, device)).status_code == 200
    assert (await usernameless(client, device)).status_code == 200  # counter now 2
    # A copy of the key whose counter lags behind: a cloned authenticator.
    cred_id = next(iter(device.credentials))
    r = await usernameless(client, device, counter=1, credential_id=cred_id)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    clones = await audit_rows(nx, owner.org_id, action="passkey_clone_suspected")
    assert clones and clones[-1]["record_id"] == factor["id"]
    # A phishing page's origin, and an assertion made for another RP ID, are refused.
    r = await usernameless(client, device, origin="https://nexus.test.evil.example")
    assert r.status_code == 400
    r = await usernameless(client, device, rp_id="evil.test")
    assert r.status_code == 400
    # No user verification: not enough to sign in without a password.
    r = await usernameless(client, device, user_verified=False)
    assert r.status_code == 400
    refused = await audit_rows(nx, owner.org_id, action="passkey_refused")
    assert len(refused) >= 3
    # The good authenticator still works after all that.
    assert (await usernameless(client, device)).status_code == 200


async def test_replayed_assertions_and_stale_challenges_are_refused(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    device = SoftAuthenticator()
    await register_passkey(owner, device)
    r = await client.post("/api/v1/auth/passkey/options")
    body = r.json()
    assertion = json.dumps(device.get(body["options"], ORIGIN))
    form = {"grant_type": "passkey", "challenge_token": body["challenge_token"], "credential": assertion}
    assert (await client.post("/api/v1/auth/token", data=form)).status_code == 200
    r = await client.post("/api/v1/auth/token", data=form)
    assert r.status_code == 400  # the challenge is used up
    # Unknown credentials and garbage are clear 400s.
    r = await client.post("/api/v1/auth/passkey/options")
    body = r.json()
    stranger = SoftAuthenticator()
    stranger.create({"rp": {"id": "nexus.test", "name": "x"}, "user": {"id": "eA", "name": "x", "displayName": "x"},
                     "challenge": "AAAA", "pubKeyCredParams": [{"type": "public-key", "alg": -7}]}, ORIGIN)
    form = {"grant_type": "passkey", "challenge_token": body["challenge_token"],
            "credential": json.dumps(stranger.get(body["options"], ORIGIN))}
    assert (await client.post("/api/v1/auth/token", data=form)).status_code == 400
    for bad in ("{}", "not json", json.dumps({"id": "!!", "rawId": "!!"}), "x" * 20_000):
        form["credential"] = bad
        r = await client.post("/api/v1/auth/token", data=form)
        assert r.status_code in (400, 413) and r.headers["content-type"] == "application/problem+json", bad
    cid = body["challenge_token"][4:30]
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE identity_auth_challenge SET expires_at = ? WHERE id = ?",
                           [nx.db.ts(utcnow() - timedelta(seconds=1)), cid])
    form["credential"] = json.dumps(device.get(body["options"], ORIGIN))
    assert (await client.post("/api/v1/auth/token", data=form)).status_code == 400


async def test_registration_from_another_origin_or_user_is_refused(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user()
    device = SoftAuthenticator()
    r = await owner.post(f"{ACCOUNT}/passkeys/options")
    body = r.json()
    credential = device.create(body["options"], "https://evil.test")
    r = await owner.post(f"{ACCOUNT}/passkeys", json={"challenge_token": body["challenge_token"], "credential": credential})
    assert r.status_code == 400
    assert (await audit_rows(nx, owner.org_id, action="passkey_registration_refused"))
    # The owner's registration challenge is not the member's to finish.
    r = await owner.post(f"{ACCOUNT}/passkeys/options")
    body = r.json()
    credential = device.create(body["options"], ORIGIN)
    r = await member.post(f"{ACCOUNT}/passkeys", json={"challenge_token": body["challenge_token"], "credential": credential})
    assert r.status_code == 400
    assert not (await owner.get(f"{ACCOUNT}/security")).json()["factors"]


async def test_step_up_with_a_passkey(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    device = SoftAuthenticator()
    await register_passkey(owner, device)
    me = (await owner.get("/api/v1/identity/me")).json()
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE identity_session SET auth_time = ? WHERE id = ?",
                           [nx.db.ts(utcnow() - timedelta(hours=2)), me["auth"]["session_id"]])
    nx.auth.invalidate_all()
    assert (await owner.post(f"{ACCOUNT}/recovery-codes")).status_code == 403
    r = await owner.post("/api/v1/auth/step-up/passkey-options")
    body = r.json()
    assertion = device.get(body["options"], ORIGIN)
    r = await owner.post("/api/v1/auth/step-up", json={"challenge_token": body["challenge_token"], "credential": assertion})
    assert r.status_code == 200, r.text
    assert "hwk" in r.json()["amr"]
    assert (await owner.post(f"{ACCOUNT}/recovery-codes")).status_code == 201
