"""Sign in with an external OpenID Connect provider: NEXUS as relying party (authlib client)
against a real OIDC provider on its own port (tests/apps/identity/oidc_peer.py): code +
PKCE + state + nonce, ID token verified against the provider's JWKS, JIT provisioning,
claim-to-role mapping, and the attacks: wrong state, nonce, key, audience, expiry."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest_asyncio

from nexus.kernel.http.app import Nexus
from tests.apps.identity.oidc_peer import OidcPeer
from tests.factories import Actor, audit_rows, new_org


def browser(nx: Nexus) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=nx, client=("203.0.113.30", 5000)),
                             base_url="http://nexus.test")


@dataclass
class Fed:
    owner: Actor
    peer: OidcPeer
    idp: dict[str, Any]

    @property
    def prefix(self) -> str:
        return f"/api/v1/identity/federation/{self.owner.org_slug}/oidc/acme"


@pytest_asyncio.fixture
async def fed(client: httpx.AsyncClient, nx: Nexus) -> AsyncIterator[Fed]:
    owner = await new_org(client, nx)
    secret = "s3cret-" + secrets.token_urlsafe(16)
    with OidcPeer("nexus-client", secret) as peer:
        peer.redirect_uris.add(f"http://nexus.test/api/v1/identity/federation/{owner.org_slug}/oidc/acme/callback")
        r = await owner.post("/api/v1/identity/identity-providers", json={
            "slug": "acme", "name": "Acme SSO", "protocol": "oidc", "issuer": peer.issuer,
            "client_id": "nexus-client", "client_secret": secret,
            "role_map": [{"claim": "groups", "value": "it-admins", "role": "admin"}], "default_roles": ["member"]})
        assert r.status_code == 201, r.text
        yield Fed(owner, peer, r.json())


async def authorize(b: httpx.AsyncClient, f: Fed, next_path: str = "/apps/notes") -> str:
    """Start at NEXUS, follow to the real provider, and return the callback URL it sends back."""
    r = await b.get(f"{f.prefix}/login", params={"next": next_path})
    assert r.status_code == 302, r.text
    url = r.headers["location"]
    assert url.startswith(f.peer.issuer + "/authorize?")
    q = parse_qs(urlsplit(url).query)
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert q["state"][0] and q["nonce"][0] and q["client_id"] == ["nexus-client"]
    async with httpx.AsyncClient() as real:
        r = await real.get(url)
    assert r.status_code == 302, r.text
    back = r.headers["location"]
    assert back.startswith("http://nexus.test/")
    return back.removeprefix("http://nexus.test")


def person(f: Fed, **claims: Any) -> str:
    email = f"p-{secrets.token_hex(3)}@acme.test"
    f.peer.user = {"sub": "acme|" + secrets.token_hex(6), "email": email, "email_verified": True,
                   "name": "Pat Acme", **claims}
    return email


async def refused(nx: Nexus, f: Fed, r: httpx.Response, reason: str, status: int = 400) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["reason"] == reason, r.json()
    assert "nexus_access" not in r.headers.get("set-cookie", "")
    rows = await audit_rows(nx, f.owner.org_id, action="federated_sign_in_refused")
    assert rows and rows[-1]["after"]["reason"] == reason and rows[-1]["after"]["protocol"] == "oidc"


async def test_sign_in_provisions_maps_roles_and_opens_a_session(nx: Nexus, fed: Fed) -> None:
    email = person(fed, groups=["staff", "it-admins"])
    async with browser(nx) as b:
        r = await b.get(await authorize(b, fed))
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/apps/notes"
        me = (await b.get("/api/v1/identity/me")).json()
        assert me["email"] == email and me["name"] == "Pat Acme" and set(me["roles"]) == {"admin", "member"}
    # the code went with the PKCE verifier and NEXUS's exact redirect URI
    sent = fed.peer.token_requests[-1]
    assert sent["grant_type"] == "authorization_code" and len(sent["code_verifier"]) >= 43
    rows = await audit_rows(nx, fed.owner.org_id, action="signed_in", record_id=me["id"])
    assert rows[-1]["after"]["method"] == "oidc:acme"
    # the same subject again, without the admin group and with a new email: same user, roles follow
    fed.peer.user = {**fed.peer.user, "groups": ["staff"], "email": "renamed@acme.test"}
    async with browser(nx) as b:
        assert (await b.get(await authorize(b, fed))).status_code == 303
        again = (await b.get("/api/v1/identity/me")).json()
        assert again["id"] == me["id"] and again["roles"] == ["member"]


async def test_secret_is_stored_encrypted_and_never_returned(nx: Nexus, fed: Fed) -> None:
    r = await fed.owner.get(f"/api/v1/identity/identity-providers/{fed.idp['id']}")
    body = r.text
    assert fed.peer.client_secret not in body and "client_secret" not in r.json()
    assert fed.peer.client_secret not in (await fed.owner.get("/api/v1/identity/identity-providers")).text
    async with nx.db.reader() as conn:
        sealed = await conn.fetchval("SELECT client_secret_sealed FROM identity_fed_idp WHERE id = ?", [fed.idp["id"]])
    assert sealed and fed.peer.client_secret not in sealed
    audit = await audit_rows(nx, fed.owner.org_id, resource="identity-providers")
    assert audit and fed.peer.client_secret not in str(audit) and sealed not in str(audit)
    assert all("client_secret_sealed" not in (row["after"] or {}) for row in audit)
    # public discovery names the provider for the sign-in page, and nothing else
    r = await fed.owner.client.get(f"/api/v1/identity/federation/{fed.owner.org_slug}/providers")
    assert r.json()["items"] == [{"slug": "acme", "name": "Acme SSO", "protocol": "oidc",
                                  "login_url": f"{fed.prefix}/login"}]


async def test_config_validation(fed: Fed) -> None:
    o = fed.owner
    for body, pointer in (
        ({"issuer": "ftp://idp.test"}, "/issuer"),
        ({"issuer": "http://idp.example.com"}, "/issuer"),  # http only on the loopback
        ({"issuer": None}, "/issuer"),
        ({"client_id": None}, "/client_id"),
        ({"scopes": "email profile"}, "/scopes"),
    ):
        full = {"slug": "x-" + secrets.token_hex(2), "name": "X", "protocol": "oidc", "issuer": "https://idp.test",
                "client_id": "c", **body}
        r = await o.post("/api/v1/identity/identity-providers", json=full)
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == pointer, (body, r.text)
    r = await o.patch(f"/api/v1/identity/identity-providers/{fed.idp['id']}", json={"protocol": "saml"})
    assert r.status_code == 422


async def test_wrong_state_is_refused(nx: Nexus, fed: Fed) -> None:
    person(fed)
    async with browser(nx) as b:
        back = await authorize(b, fed)
        forged = back.replace("state=", "state=x")
        await refused(nx, fed, await b.get(forged), "unknown_state")
        await refused(nx, fed, await b.get(f"{fed.prefix}/callback?code=abc"), "unknown_state")
        assert (await b.get("/api/v1/identity/me")).status_code == 401


async def test_callback_in_another_browser_and_replay_are_refused(nx: Nexus, fed: Fed) -> None:
    person(fed)
    async with browser(nx) as victim, browser(nx) as attacker:
        back = await authorize(attacker, fed)
        # login CSRF: the attacker's callback URL opened in the victim's browser
        await refused(nx, fed, await victim.get(back), "browser_mismatch")
        assert (await victim.get("/api/v1/identity/me")).status_code == 401
        back = await authorize(attacker, fed)
        assert (await attacker.get(back)).status_code == 303
        await refused(nx, fed, await attacker.get(back), "unknown_state")  # the same callback twice


async def test_wrong_nonce_is_refused(nx: Nexus, fed: Fed) -> None:
    person(fed)
    fed.peer.id_token_overrides = {"nonce": "not-the-one-we-sent"}
    async with browser(nx) as b:
        await refused(nx, fed, await b.get(await authorize(b, fed)), "bad_claims")
        assert (await b.get("/api/v1/identity/me")).status_code == 401


async def test_id_token_signed_with_another_key_is_refused(nx: Nexus, fed: Fed) -> None:
    email = person(fed)
    fed.peer.sign_with_foreign_key = True
    async with browser(nx) as b:
        await refused(nx, fed, await b.get(await authorize(b, fed)), "bad_signature")
    r = await fed.owner.get("/api/v1/identity/users", params={"email": email})
    assert r.json()["items"] == []


async def test_unsigned_id_token_is_refused(nx: Nexus, fed: Fed) -> None:
    from nexus.apps.identity.federation import oidc

    person(fed)
    doc = await oidc.discover(fed.peer.issuer)
    import base64
    import json

    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    now = int(time.time())
    token = part({"alg": "none"}) + "." + part({"iss": fed.peer.issuer, "aud": "nexus-client", "sub": "x",
                                                "iat": now, "exp": now + 60, "nonce": "n"}) + "."
    try:
        await oidc.verify_id_token(fed.idp, doc, token, "n")
    except oidc.OidcError as exc:
        assert exc.reason == "bad_signature"
    else:
        raise AssertionError("alg=none was accepted")


async def test_wrong_audience_and_issuer_are_refused(nx: Nexus, fed: Fed) -> None:
    person(fed)
    for override in ({"aud": "some-other-client"}, {"aud": ["some-other-client", "third"]},
                     {"iss": "https://evil.test"}):
        fed.peer.id_token_overrides = override
        async with browser(nx) as b:
            await refused(nx, fed, await b.get(await authorize(b, fed)), "bad_claims")


async def test_expired_id_token_is_refused(nx: Nexus, fed: Fed) -> None:
    person(fed)
    now = int(time.time())
    fed.peer.id_token_overrides = {"iat": now - 7200, "exp": now - 3600}
    async with browser(nx) as b:
        await refused(nx, fed, await b.get(await authorize(b, fed)), "expired")


async def test_unverified_email_does_not_take_over_an_account(nx: Nexus, fed: Fed) -> None:
    person(fed, email=fed.owner.email, email_verified=False)
    async with browser(nx) as b:
        await refused(nx, fed, await b.get(await authorize(b, fed)), "email_not_verified", 403)
        assert (await b.get("/api/v1/identity/me")).status_code == 401


async def test_idp_error_and_unknown_provider(nx: Nexus, fed: Fed) -> None:
    async with browser(nx) as b:
        r = await b.get(f"{fed.prefix}/login")
        state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
        r = await b.get(f"{fed.prefix}/callback", params={"error": "access_denied", "state": state})
        await refused(nx, fed, r, "idp_error")
        assert (await b.get(f"/api/v1/identity/federation/{fed.owner.org_slug}/oidc/nope/login")).status_code == 404
        assert (await b.get("/api/v1/identity/federation/no-such-org/oidc/acme/login")).status_code == 404


async def test_discovery_naming_another_issuer_or_clear_text_endpoints_is_refused(nx: Nexus, fed: Fed) -> None:
    from nexus.apps.identity.federation import oidc

    oidc._discovery.clear()
    for override, reason in (({"issuer": "https://impostor.test"}, "issuer_mismatch"),
                             ({"token_endpoint": "http://idp.example.com/token"}, "idp_misconfigured")):
        fed.peer.discovery_overrides = override
        async with browser(nx) as b:
            r = await b.get(f"{fed.prefix}/login")
            assert r.status_code == 502 and r.json()["reason"] == reason, r.text
            assert "set-cookie" not in r.headers
    fed.peer.discovery_overrides = {}
    oidc._discovery.clear()
