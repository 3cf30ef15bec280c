"""The NEXUS web app signs in through its own provider: built-in client `nexus-web`,
code + PKCE S256, the code turned into the cookie session at /api/v1/auth/session/code."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from nexus.kernel.http.app import Nexus
from tests.apps.identity.oidc_helpers import query_of, signed_in_browser
from tests.factories import Actor, new_org

CALLBACK = "http://nexus.test/auth/callback"


def authorize_url(verifier: str, state: str, redirect_uri: str = CALLBACK, **extra: str) -> str:
    q = {"client_id": "nexus-web", "response_type": "code", "scope": "openid profile email api",
         "redirect_uri": redirect_uri, "state": state, "code_challenge": create_s256_code_challenge(verifier),
         "code_challenge_method": "S256", **extra}
    return "/oauth/authorize?" + urlencode(q)


async def code_for(b: httpx.AsyncClient, verifier: str, state: str = "st-1") -> str:
    r = await b.get(authorize_url(verifier, state))
    assert r.status_code == 302, r.text
    assert r.headers["location"].startswith(CALLBACK + "?")
    q = query_of(r.headers["location"])
    assert q["state"] == state and q["iss"] == "http://nexus.test"
    return q["code"]


async def exchange(b: httpx.AsyncClient, code: str, verifier: str, redirect_uri: str = CALLBACK,
                   **headers: str) -> httpx.Response:
    return await b.post("/api/v1/auth/session/code",
                        json={"code": code, "code_verifier": verifier, "redirect_uri": redirect_uri},
                        headers={"X-CSRF-Token": b.cookies.get("nexus_csrf") or "", **headers})


async def audit_actions(owner: Actor) -> list[str]:
    r = await owner.get("/api/v1/audit?limit=200")
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["items"]]


async def test_web_app_session_comes_from_the_code(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    async with signed_in_browser(nx, owner) as b:
        login_refresh = b.cookies.get("nexus_refresh", path="/api/v1/auth/session")
        verifier = secrets.token_urlsafe(48)
        code = await code_for(b, verifier)  # first party: no consent page
        r = await exchange(b, code, verifier)
        assert r.status_code == 200, r.text
        assert r.json()["user"]["email"] == owner.email
        assert b.cookies.get("nexus_refresh", path="/api/v1/auth/session") != login_refresh
        assert (await b.get("/api/v1/identity/me")).status_code == 200
        csrf = b.cookies.get("nexus_csrf") or ""
        assert (await b.post("/api/v1/tasks/tasks", json={"title": "t"}, headers={"X-CSRF-Token": csrf})
                ).status_code == 201
        # The sign-in step's own refresh token no longer works; the exchanged one does.
        r = await b.post("/api/v1/auth/session/refresh", headers={"X-CSRF-Token": csrf},
                         cookies={"nexus_refresh": login_refresh or ""})
        assert r.status_code == 401
    actions = await audit_actions(owner)
    assert "oauth_code_issued" in actions and "oauth_token_issued" in actions


async def test_wrong_verifier_replay_and_other_uris_are_refused(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    async with signed_in_browser(nx, owner) as b:
        verifier = secrets.token_urlsafe(48)
        code = await code_for(b, verifier)
        r = await exchange(b, code, secrets.token_urlsafe(48))
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        # the wrong verifier spent the code
        r = await exchange(b, code, verifier)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        # and a replayed code ends the sign-in it was issued in
        assert (await b.get("/api/v1/identity/me")).status_code == 401
    async with signed_in_browser(nx, owner) as b:
        verifier = secrets.token_urlsafe(48)
        code = await code_for(b, verifier)
        assert (await exchange(b, code, verifier, "http://nexus.test/auth/callback/")).status_code == 400
        # no CSRF header, another site's Origin, missing fields
        code = await code_for(b, verifier)
        r = await b.post("/api/v1/auth/session/code", json={"code": code, "code_verifier": verifier,
                                                            "redirect_uri": CALLBACK})
        assert r.status_code == 403
        assert (await exchange(b, code, verifier, Origin="https://evil.test")).status_code == 403
        assert (await b.post("/api/v1/auth/session/code", json={},
                             headers={"X-CSRF-Token": b.cookies.get("nexus_csrf") or ""})).status_code == 400
        assert (await exchange(b, "not-a-code", verifier)).status_code == 400
        # Redirect URIs other than this host's exact callback are shown as an error page, never redirected.
        for uri in ("https://evil.test/auth/callback", "http://nexus.test/auth/callback?x=1",
                    "http://NEXUS.test/auth/callback", "http://nexus.test:8080/auth/callback"):
            r = await b.get(authorize_url(verifier, "s", redirect_uri=uri))
            assert r.status_code == 400 and "location" not in r.headers, uri
        # Plain PKCE or none at all is refused (public client).
        r = await b.get(authorize_url(verifier, "s", code_challenge_method="plain"))
        assert query_of(r.headers["location"])["error"] == "invalid_request"
        q = {"client_id": "nexus-web", "response_type": "code", "scope": "openid", "redirect_uri": CALLBACK}
        r = await b.get("/oauth/authorize?" + urlencode(q))
        assert query_of(r.headers["location"])["error"] == "invalid_request"
        # The web client's codes are not redeemable at the token endpoint.
        code = await code_for(b, verifier)
        r = await b.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                               "code_verifier": verifier, "redirect_uri": CALLBACK,
                                               "client_id": "nexus-web"})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_code_only_works_in_the_sign_in_it_was_issued_for(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    async with signed_in_browser(nx, owner) as victim, signed_in_browser(nx, owner) as attacker:
        verifier = secrets.token_urlsafe(48)
        code = await code_for(attacker, verifier)
        r = await exchange(victim, code, verifier)  # code injection into another browser
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=nx), base_url="http://nexus.test") as anon:
        r = await anon.get(authorize_url("x" * 43, "s"))
        assert r.status_code == 302 and r.headers["location"] == "/"  # the web app signs the person in first


async def test_public_url_fixes_the_callback(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    nx.state["identity.oidc"].public_url = "https://nexus.example.com"
    try:
        async with signed_in_browser(nx, owner) as b:
            verifier = secrets.token_urlsafe(48)
            r = await b.get(authorize_url(verifier, "s"))  # the request's own host no longer counts
            assert r.status_code == 400
            r = await b.get(authorize_url(verifier, "s", redirect_uri="https://nexus.example.com/auth/callback"))
            assert r.status_code == 302 and r.headers["location"].startswith("https://nexus.example.com/auth/callback?")
    finally:
        nx.state["identity.oidc"].public_url = None
