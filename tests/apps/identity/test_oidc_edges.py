"""Malformed and out-of-order requests to the provider: each gets a clear 4xx, changes nothing.
Plus consent memory, scope narrowing, sign-out ending online refresh tokens, and CORS."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from nexus.kernel.http.app import Nexus
from tests.apps.identity.oidc_helpers import consent_form, query_of, register_client, signed_in_browser
from tests.factories import audit_rows, new_org

RP = "https://rp.example.com/cb"


def _params(rp: dict[str, Any], verifier: str, scope: str, **extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": rp["client_id"], "redirect_uri": RP, "scope": scope,
            "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256", **extra}


async def test_malformed_token_requests_get_clear_errors(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rp = await register_client(owner)
    auth = (rp["client_id"], rp["client_secret"])
    grants_before = await _count(nx, "identity_oauth_grant")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"data": {}}, 400, "invalid_request"),
        ({"data": {"grant_type": "authorization_code"}}, 400, "invalid_request"),
        ({"data": {"grant_type": "refresh_token"}}, 400, "invalid_request"),
        ({"data": {"grant_type": "authorization_code", "code": "x" * 500}}, 400, "invalid_request"),
        ({"data": {"grant_type": "authorization_code", "code": "nope", "redirect_uri": RP}}, 400, "invalid_grant"),
        ({"content": b"grant_type=a&grant_type=b",
          "headers": {"content-type": "application/x-www-form-urlencoded"}}, 400, "invalid_request"),
        ({"content": b"<xml/>", "headers": {"content-type": "text/xml"}}, 415, ""),
        ({"content": b"grant_type=client_credentials", "headers": {
            "content-type": "application/x-www-form-urlencoded", "authorization": "Basic !!!"}}, 401, "invalid_client"),
        ({"data": {"grant_type": "client_credentials", "client_secret": "x"}}, 400, "invalid_request"),
    ]
    for kw, status, error in cases:
        r = await client.post("/oauth/token", auth=auth if "authorization" not in kw.get("headers", {}) else None, **kw)
        assert r.status_code == status, (kw, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), kw
        if error:
            assert r.json()["error"] == error, (kw, r.text)
    r = await client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert await _count(nx, "identity_oauth_grant") == grants_before
    # Introspection and revocation need a token and a client.
    assert (await client.post("/oauth/introspect", data={}, auth=auth)).status_code == 400
    assert (await client.post("/oauth/revoke", data={}, auth=auth)).status_code == 400
    assert (await client.post("/oauth/revoke", data={"token": "x"})).status_code == 401
    r = await client.get("/oauth/userinfo")
    assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]
    # The authorization endpoint: repeated parameters and unknown clients are pages, not redirects.
    r = await client.get("/oauth/authorize?client_id=a&client_id=b")
    assert r.status_code == 400 and "location" not in r.headers and "more than once" in r.text
    r = await client.get("/oauth/logout")
    assert r.status_code == 400 and "id_token_hint" in r.text


async def test_consent_is_remembered_per_scope_and_prompt_controls_it(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rp = await register_client(owner)
    verifier = secrets.token_urlsafe(48)
    async with signed_in_browser(nx, owner) as b:
        r = await b.get("/oauth/authorize", params=_params(rp, verifier, "openid", prompt="none", state="s"))
        assert query_of(r.headers["location"])["error"] == "consent_required"
        r = await b.get("/oauth/authorize", params=_params(rp, verifier, "openid"))
        assert r.status_code == 200
        r = await b.post("/oauth/authorize", data={**consent_form(r.text), "decision": "allow"})
        assert "code" in query_of(r.headers["location"])
        r = await b.get("/oauth/authorize", params=_params(rp, verifier, "openid", prompt="none"))
        assert "code" in query_of(r.headers["location"])  # remembered
        r = await b.get("/oauth/authorize", params=_params(rp, verifier, "openid email"))
        assert r.status_code == 200 and "See your email address" in r.text  # more scopes: asked again
        r = await b.get("/oauth/authorize", params=_params(rp, verifier, "openid", prompt="consent"))
        assert r.status_code == 200  # asked because told to
        r = await b.get("/oauth/authorize", params=_params(rp, verifier, "openid unknown"))
        assert query_of(r.headers["location"])["error"] == "invalid_scope"
        r = await b.get("/oauth/authorize", params={**_params(rp, verifier, "openid"), "response_type": "token"})
        assert query_of(r.headers["location"])["error"] == "unsupported_response_type"
        r = await b.get("/oauth/authorize", params={**_params(rp, verifier, "openid"), "code_challenge": "short"})
        assert query_of(r.headers["location"])["error"] == "invalid_request"


async def test_scopes_narrow_on_refresh_and_sign_out_ends_online_tokens(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rp = await register_client(owner, first_party=True)
    auth = (rp["client_id"], rp["client_secret"])

    async def tokens(scope: str, b: httpx.AsyncClient) -> dict[str, Any]:
        verifier = secrets.token_urlsafe(48)
        r = await b.get("/oauth/authorize", params=_params(rp, verifier, scope))
        code = query_of(r.headers["location"])["code"]
        r = await client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": RP, "code_verifier": verifier}, auth=auth)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async with signed_in_browser(nx, owner) as b:
        online = await tokens("openid api", b)
        offline = await tokens("openid api offline_access", b)
        # A refresh may narrow the scope, never widen it.
        r = await client.post("/oauth/token", data={"grant_type": "refresh_token", "scope": "openid",
                                                    "refresh_token": online["refresh_token"]}, auth=auth)
        assert r.status_code == 200 and r.json()["scope"] == "openid"
        narrowed = r.json()
        assert (await client.get("/api/v1/tasks/tasks", headers={
            "Authorization": f"Bearer {narrowed['access_token']}"})).status_code == 403
        r = await client.post("/oauth/token", data={"grant_type": "refresh_token", "scope": "openid email",
                                                    "refresh_token": narrowed["refresh_token"]}, auth=auth)
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
        # userinfo needs openid.
        r = await client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {offline['access_token']}"})
        assert r.status_code == 200 and "email" not in r.json()
        # Signing out of NEXUS ends refresh tokens without offline_access; offline ones live on.
        csrf = b.cookies.get("nexus_csrf")
        assert (await b.request("DELETE", "/api/v1/auth/session", headers={"X-CSRF-Token": csrf})).status_code == 204
    r = await client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                "refresh_token": narrowed["refresh_token"]}, auth=auth)
    assert r.status_code == 400 and "session has ended" in r.json()["detail"]
    r = await client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                "refresh_token": offline["refresh_token"]}, auth=auth)
    assert r.status_code == 200, r.text
    assert await audit_rows(nx, owner.org_id, action="oauth_refused")


async def test_browser_apps_get_cors_only_from_their_own_origin(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    spa = await register_client(owner, client_type="public", first_party=True,
                                redirect_uris=["https://spa.example.com/cb"])
    form = {"grant_type": "refresh_token", "refresh_token": "nxor_bad", "client_id": spa["client_id"]}
    r = await client.post("/oauth/token", data=form, headers={"Origin": "https://spa.example.com"})
    assert r.status_code == 400 and r.headers["access-control-allow-origin"] == "https://spa.example.com"
    r = await client.post("/oauth/token", data=form, headers={"Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in r.headers
    r = await client.options("/oauth/userinfo", headers={"Origin": "https://evil.test",
                                                         "Access-Control-Request-Headers": "authorization"})
    assert r.status_code == 204 and "Authorization" in r.headers["access-control-allow-headers"]


async def _count(nx: Nexus, table: str) -> int:
    async with nx.db.reader() as conn:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
