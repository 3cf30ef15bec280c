"""Hostile and malformed input against the OpenID Connect provider: none succeeds, each is
refused with a clear answer, changes nothing, and is audited."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey, RSAKey

from nexus.kernel.http.app import Nexus
from tests.apps.identity.oidc_helpers import consent_form, query_of, register_client, signed_in_browser
from tests.factories import Actor, audit_rows, new_org

RP = "https://rp.example.com/cb"


async def _code(nx: Nexus, browser: httpx.AsyncClient, rp: dict[str, Any], verifier: str | None = None,
                scope: str = "openid profile email api offline_access", **extra: str) -> str:
    verifier = verifier or secrets.token_urlsafe(48)
    params = {"response_type": "code", "client_id": rp["client_id"], "redirect_uri": RP, "scope": scope,
              "state": "st", "nonce": "n1", "code_challenge": create_s256_code_challenge(verifier),
              "code_challenge_method": "S256", **extra}
    r = await browser.get("/oauth/authorize", params=params)
    if r.status_code == 200:
        form = consent_form(r.text)
        r = await browser.post("/oauth/authorize", data={**form, "decision": "allow"})
    assert r.status_code == 302, r.text
    return query_of(r.headers["location"])["code"]


async def _exchange(client: httpx.AsyncClient, rp: dict[str, Any], code: str, verifier: str) -> httpx.Response:
    return await client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                   "redirect_uri": RP, "code_verifier": verifier},
                             auth=(rp["client_id"], rp["client_secret"]))


async def _tokens(client: httpx.AsyncClient, nx: Nexus, owner: Actor, rp: dict[str, Any]) -> dict[str, Any]:
    async with signed_in_browser(nx, owner) as browser:
        verifier = secrets.token_urlsafe(48)
        code = await _code(nx, browser, rp, verifier)
    r = await _exchange(client, rp, code, verifier)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_forged_expired_and_misaddressed_tokens_are_refused(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rp = await register_client(owner, first_party=True)
    tokens = await _tokens(client, nx, owner, rp)
    good = tokens["access_token"]
    assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(good))).status_code == 200
    header = json.loads(base64.urlsafe_b64decode(good.split(".")[0] + "=="))
    claims = json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "=="))
    kid, real_key = await nx.state["identity.oidc"].keys.signer()

    def signed(key: Any, alg: str = "RS256", **changes: Any) -> str:
        return jose_jwt.encode({**header, "alg": alg}, {**claims, **changes}, key, algorithms=[alg])

    now = int(time.time())
    forged = {
        "alg=none": f"{_b64({**header, 'alg': 'none'})}.{_b64(claims)}.",
        "a stranger's key with our kid": signed(RSAKey.generate_key(2048)),
        "HS256 keyed with our public key": signed(OctKey.import_key(json.dumps(real_key.as_dict(private=False))),
                                                  alg="HS256"),
        "expired": signed(real_key, exp=now - 5, iat=now - 100),
        "wrong audience": signed(real_key, aud="https://other.example.com/api"),
        "wrong issuer": signed(real_key, iss="https://evil.example.com", aud="https://evil.example.com/api"),
        "an ID token": tokens["id_token"],
        "tampered scope": good.split(".")[0] + "." + _b64({**claims, "scope": "api"}) + "." + good.split(".")[2],
    }
    for what, token in forged.items():
        r = await client.get("/api/v1/tasks/tasks", headers=_bearer(token))
        assert r.status_code == 401, what
        assert r.headers["content-type"].startswith("application/problem+json"), what
        r = await client.get("/oauth/userinfo", headers=_bearer(token))
        assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"], what
    assert kid == header["kid"]


async def test_a_replayed_code_is_refused_and_revokes_its_tokens(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rp = await register_client(owner, first_party=True)
    async with signed_in_browser(nx, owner) as browser:
        verifier = secrets.token_urlsafe(48)
        code = await _code(nx, browser, rp, verifier)
        r = await _exchange(client, rp, code, verifier)
        assert r.status_code == 200
        access, refresh = r.json()["access_token"], r.json()["refresh_token"]
        assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(access))).status_code == 200
        r = await _exchange(client, rp, code, verifier)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(access))).status_code == 401
        r = await client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh},
                              auth=(rp["client_id"], rp["client_secret"]))
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        assert await audit_rows(nx, owner.org_id, action="authorization_code_replayed")

        # A wrong PKCE verifier is refused, and the code is spent: the right one no longer works.
        verifier = secrets.token_urlsafe(48)
        code = await _code(nx, browser, rp, verifier)
        r = await _exchange(client, rp, code, secrets.token_urlsafe(48))
        assert r.status_code == 400 and "code_verifier" in r.json()["detail"]
        assert (await _exchange(client, rp, code, verifier)).status_code == 400
        # No verifier at all, or one for a request that had no challenge: refused.
        code = await _code(nx, browser, rp, verifier)
        r = await client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": RP}, auth=(rp["client_id"], rp["client_secret"]))
        assert r.status_code == 400
        # A code is bound to its redirect URI and its client.
        other = await register_client(owner, first_party=True)
        code = await _code(nx, browser, rp, verifier)
        r = await client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": RP, "code_verifier": verifier},
                              auth=(other["client_id"], other["client_secret"]))
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        # `plain` PKCE is refused at the authorization endpoint (back at the client, with an error).
        r = await browser.get("/oauth/authorize", params={
            "response_type": "code", "client_id": rp["client_id"], "redirect_uri": RP, "scope": "openid",
            "code_challenge": verifier, "code_challenge_method": "plain", "state": "x"})
        assert r.status_code == 302
        back = query_of(r.headers["location"])
        assert back["error"] == "invalid_request" and back["state"] == "x"
    reasons = [row["after"]["reason"] for row in await audit_rows(nx, owner.org_id, action="oauth_refused")]
    assert any("code_verifier does not match" in x for x in reasons)
    assert any("another client" in x for x in reasons)


@pytest.mark.parametrize("variant", [
    "https://rp.example.com/cb/", "https://RP.example.com/cb", "https://rp.example.com/CB",
    "https://rp.example.com/cb?next=https://evil.test", "https://evil.test@rp.example.com/cb",
    "https://rp.example.com@evil.test/cb", "https://rp.example.com:8443/cb", "http://rp.example.com/cb",
    "https://rp.example.com/cb#frag", "https://evil.test/cb", "//evil.test/cb", "",
])
async def test_redirect_uri_variations_are_refused_without_redirecting(
        client: httpx.AsyncClient, nx: Nexus, variant: str) -> None:
    owner = await new_org(client, nx)
    rp = await register_client(owner, first_party=True)
    async with signed_in_browser(nx, owner) as browser:
        r = await browser.get("/oauth/authorize", params={
            "response_type": "code", "client_id": rp["client_id"], "redirect_uri": variant, "scope": "openid",
            "code_challenge": create_s256_code_challenge("x" * 43), "code_challenge_method": "S256"})
    assert r.status_code == 400 and "location" not in r.headers
    assert "not registered" in r.text and r.headers["x-frame-options"] == "DENY"
    assert await audit_rows(nx, owner.org_id, action="oauth_refused")
    # Registration refuses what could never match safely.
    r = await owner.post("/api/v1/identity/oauth-clients", json={"name": "x", "redirect_uris": ["http://evil.test/cb"]})
    assert r.status_code == 422


async def test_consent_post_needs_the_csrf_token_and_this_session(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rp = await register_client(owner)
    async with signed_in_browser(nx, owner) as browser:
        r = await browser.get("/oauth/authorize", params={
            "response_type": "code", "client_id": rp["client_id"], "redirect_uri": RP, "scope": "openid email",
            "code_challenge": create_s256_code_challenge("y" * 43), "code_challenge_method": "S256"})
        assert r.status_code == 200 and "Allow" in r.text
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        form = consent_form(r.text)
        for bad in ({**form, "csrf_token": ""}, {k: v for k, v in form.items() if k != "csrf_token"},
                    {**form, "csrf_token": "guessed"}):
            r = await browser.post("/oauth/authorize", data={**bad, "decision": "allow"})
            assert r.status_code == 403 and "location" not in r.headers
        r = await browser.post("/oauth/authorize", data={**form, "decision": "allow"},
                               headers={"Origin": "https://evil.test"})
        assert r.status_code == 403 and "location" not in r.headers
        r = await browser.post("/oauth/authorize", data={**form, "request": form["request"][:-2] + "00",
                                                         "decision": "allow"})
        assert r.status_code == 400 and "location" not in r.headers
        assert not await audit_rows(nx, owner.org_id, action="oauth_code_issued")
        # Another signed-in person cannot submit this person's consent request.
        colleague = await owner.add_user(["member"])
        async with signed_in_browser(nx, colleague) as other:
            csrf = other.cookies.get("nexus_csrf")
            r = await other.post("/oauth/authorize", data={**form, "csrf_token": csrf, "decision": "allow"})
            assert r.status_code == 400 and "location" not in r.headers
        # Deny goes back with access_denied; allow with a code; both audited.
        r = await browser.post("/oauth/authorize", data={**form, "decision": "deny"})
        assert query_of(r.headers["location"])["error"] == "access_denied"
        r = await browser.post("/oauth/authorize", data={**form, "decision": "allow"})
        assert "code" in query_of(r.headers["location"])
    assert await audit_rows(nx, owner.org_id, action="oauth_consent_denied")
    assert await audit_rows(nx, owner.org_id, action="oauth_consent_given")
    assert len([x for x in await audit_rows(nx, owner.org_id, action="oauth_refused")
                if "CSRF" in x["after"]["reason"]]) == 3


async def test_refresh_reuse_revokes_the_whole_family(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rp = await register_client(owner, first_party=True)
    t1 = await _tokens(client, nx, owner, rp)
    auth = (rp["client_id"], rp["client_secret"])
    r = await client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": t1["refresh_token"]},
                          auth=auth)
    assert r.status_code == 200
    t2 = r.json()
    assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(t2["access_token"]))).status_code == 200
    r = await client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": t1["refresh_token"]},
                          auth=auth)
    assert r.status_code == 400 and "already used" in r.json()["detail"]
    for token in (t1["access_token"], t2["access_token"]):
        assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(token))).status_code == 401
    r = await client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": t2["refresh_token"]},
                          auth=auth)
    assert r.status_code == 400
    assert await audit_rows(nx, owner.org_id, action="refresh_token_reused")
    # Malformed and foreign refresh tokens: invalid_grant, nothing else.
    for bad in ("nxor_x", "nxor_" + "A" * 26 + "_zzz", t2["refresh_token"] + "x", "garbage"):
        r = await client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": bad}, auth=auth)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", bad


async def test_client_credentials_introspection_and_revocation(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    svc = await register_client(owner, name="Reporting job", grant_types=["client_credentials"], redirect_uris=[],
                                scopes=["tasks.tasks.read", "tasks.tasks.create"], service_roles=["member"])
    auth = (svc["client_id"], svc["client_secret"])
    r = await client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "tasks.tasks.read"},
                          auth=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "refresh_token" not in body and "id_token" not in body and body["scope"] == "tasks.tasks.read"
    access = body["access_token"]
    assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(access))).status_code == 200
    assert (await client.post("/api/v1/tasks/tasks", json={"title": "x"}, headers=_bearer(access))).status_code == 403
    assert (await client.get("/api/v1/identity/users", headers=_bearer(access))).status_code == 403
    # client_secret_post works as well as Basic; a wrong secret, an unknown client or a scope
    # outside the registration are refused.
    r = await client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": svc["client_id"],
                                                "client_secret": svc["client_secret"]})
    assert r.status_code == 200 and r.json()["scope"] == "tasks.tasks.read tasks.tasks.create"
    r = await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(svc["client_id"], "nope"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client" and "Basic" in r.headers["www-authenticate"]
    r = await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("unknown", "x"))
    assert r.status_code == 401
    for scope in ("identity.users.read", "openid", "*"):
        r = await client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": scope}, auth=auth)
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope", scope
    r = await client.post("/oauth/token", data={"grant_type": "password", "username": "a", "password": "b"}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = await client.post("/oauth/token", data={"grant_type": "authorization_code", "code": "x"}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"

    # Introspection (RFC 7662) by a confidential client of the same org.
    r = await client.post("/oauth/introspect", data={"token": access}, auth=auth)
    assert r.status_code == 200 and r.json()["active"] is True and r.json()["client_id"] == svc["client_id"]
    assert (await client.post("/oauth/introspect", data={"token": access})).status_code == 401
    stranger = await new_org(client, nx)
    spy = await register_client(stranger, grant_types=["client_credentials"], redirect_uris=[], scopes=["api"])
    r = await client.post("/oauth/introspect", data={"token": access}, auth=(spy["client_id"], spy["client_secret"]))
    assert r.json() == {"active": False}
    # Another org's client cannot revoke it either; its own client can (RFC 7009, always 200).
    r = await client.post("/oauth/revoke", data={"token": access}, auth=(spy["client_id"], spy["client_secret"]))
    assert r.status_code == 200
    assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(access))).status_code == 200
    assert (await client.post("/oauth/revoke", data={"token": access}, auth=auth)).status_code == 200
    assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(access))).status_code == 401
    r = await client.post("/oauth/introspect", data={"token": access}, auth=auth)
    assert r.json() == {"active": False}
    assert (await client.post("/oauth/revoke", data={"token": "garbage"}, auth=auth)).status_code == 200
    assert await audit_rows(nx, owner.org_id, action="oauth_token_revoked")
    issued = await audit_rows(nx, owner.org_id, action="oauth_token_issued")
    assert [x["after"]["grant"] for x in issued] == ["client_credentials", "client_credentials"]
    # Deleting the client stops its tokens at once.
    r = await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)
    fresh = r.json()["access_token"]
    assert (await owner.delete(f"/api/v1/identity/oauth-clients/{svc['id']}")).status_code in (200, 204)
    assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(fresh))).status_code == 401


async def test_other_org_deactivated_users_and_logout(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rp = await register_client(owner, first_party=True)
    stranger = await new_org(client, nx)
    async with signed_in_browser(nx, stranger) as browser:
        r = await browser.get("/oauth/authorize", params={
            "response_type": "code", "client_id": rp["client_id"], "redirect_uri": RP, "scope": "openid",
            "code_challenge": create_s256_code_challenge("z" * 43), "code_challenge_method": "S256", "state": "q"})
        assert query_of(r.headers["location"])["error"] == "access_denied"
    # Not signed in: off to the web app's sign-in with a return URL (and prompt=none says so instead).
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=nx), base_url="http://nexus.test") as anon:
        params = {"response_type": "code", "client_id": rp["client_id"], "redirect_uri": RP, "scope": "openid",
                  "code_challenge": create_s256_code_challenge("z" * 43), "code_challenge_method": "S256"}
        r = await anon.get("/oauth/authorize", params=params)
        assert r.status_code == 302 and r.headers["location"].startswith("/?return_to=%2Foauth%2Fauthorize%3F")
        r = await anon.get("/oauth/authorize", params={**params, "prompt": "none"})
        assert query_of(r.headers["location"])["error"] == "login_required"
        r = await anon.get("/oauth/authorize", params={**params, "client_id": "nope"})
        assert r.status_code == 400 and "location" not in r.headers

    member = await owner.add_user(["member"])
    tokens = await _tokens(client, nx, member, rp)
    assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(tokens["access_token"]))).status_code == 200
    # Logout refuses an unregistered target, and a hint that is not ours.
    r = await client.get("/oauth/logout", params={"id_token_hint": tokens["id_token"],
                                                  "post_logout_redirect_uri": "https://evil.test/"})
    assert r.status_code == 400 and "location" not in r.headers
    r = await client.get("/oauth/logout", params={"id_token_hint": tokens["access_token"]})
    assert r.status_code == 400
    assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(tokens["access_token"]))).status_code == 200
    r = await owner.post(f"/api/v1/identity/users/{member.user_id}/deactivate")
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/tasks/tasks", headers=_bearer(tokens["access_token"]))).status_code == 401
    r = await client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                          auth=(rp["client_id"], rp["client_secret"]))
    assert r.status_code == 400
