"""The full OpenID Connect code + PKCE flow, driven by a standard client library.

NEXUS is served over real HTTP (uvicorn, on a free loopback port); authlib's
AsyncOAuth2Client is the relying party; the ID token is verified with PyJWT against the
published JWKS — an implementation independent of the server's (joserfc)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
import pytest_asyncio
import uvicorn
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from nexus.kernel.http.app import Nexus
from tests.apps.identity.oidc_helpers import (
    consent_and_get_code,
    query_of,
    register_client,
    signed_in_browser,
)
from tests.factories import free_port, new_org

# authlib 1.9 announces a future move of its httpx integration; the client works as is.
pytestmark = pytest.mark.filterwarnings("ignore:The httpx module is deprecated")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(nx: Nexus) -> AsyncIterator[str]:
    """NEXUS on a real socket, in the test's own event loop; stopped after the module."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(nx, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def test_code_flow_with_pkce_by_a_standard_client(live: str, client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    redirect = f"{live}/rp/callback"  # any loopback URL; the flow stops at the redirect
    rp = await register_client(owner, name="Wiki", redirect_uris=[redirect], post_logout_redirect_uris=[f"{live}/rp/bye"])
    async with httpx.AsyncClient(base_url=live) as anon:
        meta = (await anon.get("/.well-known/openid-configuration")).json()
        assert meta["issuer"] == live
        assert meta["code_challenge_methods_supported"] == ["S256"]
        jwks = (await anon.get(meta["jwks_uri"])).json()
    assert jwks["keys"] and all(k["kty"] == "RSA" and "d" not in k for k in jwks["keys"])

    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    async with signed_in_browser(nx, owner, base_url=live, transport=httpx.AsyncHTTPTransport()) as browser, \
            AsyncOAuth2Client(client_id=rp["client_id"], client_secret=rp["client_secret"],
                                 scope="openid profile email api", redirect_uri=redirect,
                                 code_challenge_method="S256") as rp_client:
        url, state = rp_client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier,
                                                        nonce=nonce)
        r = await consent_and_get_code(browser, url)
        assert r.status_code == 302, r.text
        location = r.headers["location"]
        assert location.startswith(redirect + "?")
        back = query_of(location)
        assert back["state"] == state and back["iss"] == live
        token = await rp_client.fetch_token(meta["token_endpoint"], authorization_response=location,
                                            code_verifier=verifier)
        # The same person again: consent is remembered, the code comes straight back.
        r = await browser.get(rp_client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)[0])
        assert r.status_code == 302 and "code=" in r.headers["location"]

        keys = jwt.PyJWKSet.from_dict(jwks)
        header = jwt.get_unverified_header(token["id_token"])
        claims = jwt.decode(token["id_token"], keys[header["kid"]].key, algorithms=["RS256"], audience=rp["client_id"],
                            issuer=live, options={"require": ["exp", "iat", "auth_time", "sub"]})
        assert claims["sub"] == owner.user_id and claims["nonce"] == nonce
        assert claims["email"] == owner.email and claims["email_verified"] is False and claims["name"]
        assert claims["org"] == owner.org_id and "owner" in claims["roles"]
        assert claims["at_hash"]

        # The access token works on the NEXUS API, with the scopes' permissions.
        me = await rp_client.get(f"{live}/api/v1/identity/me")
        assert me.status_code == 200, me.text
        assert me.json()["id"] == owner.user_id and me.json()["auth"]["kind"] == "oauth"
        created = await rp_client.post(f"{live}/api/v1/tasks/tasks", json={"title": "from the wiki"})
        assert created.status_code == 201, created.text
        info = await rp_client.get(meta["userinfo_endpoint"])
        assert info.status_code == 200 and info.json()["sub"] == owner.user_id
        assert info.json()["email"] == owner.email

        # Refresh rotates; the new access token works too.
        old_refresh = token["refresh_token"]
        token2 = await rp_client.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
        assert token2["refresh_token"] != old_refresh
        assert (await rp_client.get(f"{live}/api/v1/tasks/tasks")).status_code == 200

        # RP-initiated logout: exact post-logout URI, then the tokens stop working.
        async with httpx.AsyncClient(base_url=live) as b:
            r = await b.get(meta["end_session_endpoint"], params={
                "id_token_hint": token["id_token"], "post_logout_redirect_uri": f"{live}/rp/bye", "state": "s1"})
            assert r.status_code == 302 and r.headers["location"] == f"{live}/rp/bye?state=s1"
        r = await rp_client.get(f"{live}/api/v1/tasks/tasks")
        assert r.status_code == 401


async def test_public_client_needs_pkce_and_a_client_library_gets_tokens(
        live: str, client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    redirect = f"{live}/spa/cb"
    rp = await register_client(owner, name="SPA", client_type="public", redirect_uris=[redirect], first_party=True)
    assert "client_secret" not in rp
    async with signed_in_browser(nx, owner, base_url=live, transport=httpx.AsyncHTTPTransport()) as browser, \
            AsyncOAuth2Client(client_id=rp["client_id"], scope="openid tasks.tasks.read",
                                          redirect_uri=redirect, token_endpoint_auth_method="none") as spa:
        # Without PKCE a public client is refused (back at its own redirect URI, with an error).
        url, _ = spa.create_authorization_url(f"{live}/oauth/authorize")
        r = await browser.get(url)
        assert r.status_code == 302 and query_of(r.headers["location"])["error"] == "invalid_request"
        verifier = secrets.token_urlsafe(48)
        url, _ = spa.create_authorization_url(f"{live}/oauth/authorize", code_verifier=verifier,
                                              code_challenge=create_s256_code_challenge(verifier),
                                              code_challenge_method="S256")
        r = await browser.get(url)  # first-party: no consent screen
        assert r.status_code == 302, r.text
        token = await spa.fetch_token(f"{live}/oauth/token", authorization_response=r.headers["location"],
                                      code_verifier=verifier)
        assert (await spa.get(f"{live}/api/v1/tasks/tasks")).status_code == 200
        # tasks.tasks.read only: writing is forbidden.
        r = await spa.post(f"{live}/api/v1/tasks/tasks", json={"title": "nope"})
        assert r.status_code == 403
        assert token["scope"] == "openid tasks.tasks.read"
