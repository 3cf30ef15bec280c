"""OAuth client registration by org admins: a declared resource, secrets shown once."""

from __future__ import annotations

import hashlib

import httpx

from nexus.kernel.http.app import Nexus
from tests.apps.identity.oidc_helpers import register_client
from tests.factories import audit_rows, new_org

URL = "/api/v1/identity/oauth-clients"


async def test_secret_is_shown_once_stored_hashed_and_rotatable(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rp = await register_client(owner, name="Wiki")
    secret = rp["client_secret"]
    assert secret.startswith("nxcs_") and "secret_hash" not in rp
    got = (await owner.get(f"{URL}/{rp['id']}")).json()
    assert "client_secret" not in got and "secret_hash" not in got
    listed = (await owner.get(URL)).json()["items"]
    assert [c["client_id"] for c in listed] == [rp["client_id"]] and "secret_hash" not in listed[0]
    exported = await owner.get(f"{URL}/export?format=json")
    assert secret not in exported.text and "secret_hash" not in exported.text
    meta = (await owner.get("/api/v1/meta")).text
    assert "secret_hash" not in meta
    async with nx.db.reader() as conn:
        stored = await conn.fetchval("SELECT secret_hash FROM identity_oauth_client WHERE id = ?", [rp["id"]])
    assert stored == hashlib.sha256(secret.encode()).hexdigest()

    r = await owner.post(f"{URL}/{rp['id']}/rotate-secret")
    assert r.status_code == 200, r.text
    new_secret = r.json()["client_secret"]
    assert new_secret != secret
    form = {"grant_type": "refresh_token", "refresh_token": "nxor_x"}
    assert (await client.post("/oauth/token", data=form, auth=(rp["client_id"], secret))).status_code == 401
    r = await client.post("/oauth/token", data=form, auth=(rp["client_id"], new_secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"  # authenticated; the token is bad
    assert [x["action"] for x in await audit_rows(nx, owner.org_id, resource="oauth-clients", record_id=rp["id"])
            if x["action"] in ("created", "secret_rotated")] == ["created", "secret_rotated"]
    for row in await audit_rows(nx, owner.org_id, resource="oauth-clients"):
        assert secret not in str(row) and new_secret not in str(row) and stored not in str(row)

    public = await register_client(owner, name="SPA", client_type="public")
    assert "client_secret" not in public
    assert (await owner.post(f"{URL}/{public['id']}/rotate-secret")).status_code == 409


async def test_registration_rules_and_tenancy(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    bad_bodies = [
        {"name": "x", "redirect_uris": ["https://a.example.com/cb#frag"]},
        {"name": "x", "redirect_uris": ["http://a.example.com/cb"]},
        {"name": "x", "redirect_uris": ["https://user@a.example.com/cb"]},
        {"name": "x", "redirect_uris": ["javascript:alert(1)"]},
        {"name": "x", "redirect_uris": ["not a uri"]},
        {"name": "x", "redirect_uris": []},
        {"name": "x", "client_type": "public", "grant_types": ["client_credentials"]},
        {"name": "x", "redirect_uris": ["https://a.example.com/cb"], "scopes": ["*"]},
        {"name": "x", "redirect_uris": ["https://a.example.com/cb"], "scopes": ["nonsense"]},
        {"name": "x", "redirect_uris": ["https://a.example.com/cb"], "grant_types": ["password"]},
        {"name": "x", "redirect_uris": ["https://a.example.com/cb"], "client_secret": "mine"},
    ]
    for body in bad_bodies:
        r = await owner.post(URL, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await owner.get(URL)).json()["items"] == []
    ok = await register_client(owner, redirect_uris=["http://127.0.0.1:8765/cb", "com.example.app:/oauth",
                                                     "https://a.example.com/cb?tenant=1"])
    assert ok["redirect_uris"][0] == "http://127.0.0.1:8765/cb"
    # A service account is made for client_credentials, with roles the admin holds.
    svc = await register_client(owner, grant_types=["client_credentials"], redirect_uris=[], scopes=["api"],
                                service_roles=["viewer"])
    user = (await owner.get(f"/api/v1/identity/users/{svc['service_user_id']}")).json()
    assert user["is_service_account"] is True and user["roles"] == ["viewer"]

    member = await owner.add_user(["member"])
    assert (await member.get(URL)).status_code == 403
    assert (await member.post(URL, json={"name": "x", "redirect_uris": ["https://a.example.com/cb"]})).status_code == 403
    stranger = await new_org(client, nx)
    assert (await stranger.get(f"{URL}/{ok['id']}")).status_code == 404
    assert (await stranger.post(f"{URL}/{ok['id']}/rotate-secret")).status_code == 404
    assert (await stranger.delete(f"{URL}/{ok['id']}")).status_code == 404
    r = await owner.patch(f"{URL}/{ok['id']}", json={"redirect_uris": []})
    assert r.status_code == 422 and "redirect URI" in r.text, r.text
    r = await owner.patch(f"{URL}/{ok['id']}", json={"grant_types": ["client_credentials"]})
    assert r.status_code == 422, r.text
    r = await owner.patch(f"{URL}/{ok['id']}", json={"client_type": "public"})
    assert r.status_code == 422, r.text
    r = await owner.patch(f"{URL}/{ok['id']}", json={"redirect_uris": ["https://b.example.com/cb"]})
    assert r.status_code == 200 and r.json()["redirect_uris"] == ["https://b.example.com/cb"]


async def test_taking_a_scope_away_applies_to_issued_tokens_at_once(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    svc = await register_client(owner, grant_types=["client_credentials"], redirect_uris=[],
                                scopes=["api", "tasks.tasks.read"], service_roles=["member"])
    r = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(svc["client_id"], svc["client_secret"]))
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.post("/api/v1/tasks/tasks", json={"title": "x"}, headers=bearer)).status_code == 201
    r = await owner.patch(f"{URL}/{svc['id']}", json={"scopes": ["tasks.tasks.read"]})
    assert r.status_code == 200, r.text
    assert (await client.post("/api/v1/tasks/tasks", json={"title": "x"}, headers=bearer)).status_code == 403
    assert (await client.get("/api/v1/tasks/tasks", headers=bearer)).status_code == 200
