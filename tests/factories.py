"""Factories: organisations with signed-in people, and records made through the API."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from nexus.apps.identity.public import create_admin
from nexus.kernel.http.app import Nexus

PASSWORD = "correct horse battery"


@dataclass
class Actor:
    """A signed-in person: `await actor.get(...)` etc. send their bearer token."""

    client: httpx.AsyncClient
    email: str
    user_id: str
    org_id: str
    org_slug: str
    token: str
    refresh_token: str
    nx: Nexus
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **self.extra_headers}

    async def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kw)

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", url, **kw)

    async def patch(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kw)

    async def add_user(self, roles: list[str] | None = None, email: str | None = None) -> Actor:
        """An admin creates a colleague with a password; the colleague signs in."""
        email = email or f"user-{secrets.token_hex(4)}@{self.org_slug}.test"
        r = await self.post("/api/v1/identity/users", json={"email": email, "name": email.split("@")[0],
                                                             "password": PASSWORD, "roles": roles or ["member"]})
        assert r.status_code == 201, r.text
        return await sign_in(self.client, self.nx, email, self.org_slug)


async def token_for(client: httpx.AsyncClient, email: str, password: str = PASSWORD, org: str | None = None) -> httpx.Response:
    data = {"grant_type": "password", "username": email, "password": password}
    if org:
        data["org"] = org
    return await client.post("/api/v1/auth/token", data=data)


async def sign_in(client: httpx.AsyncClient, nx: Nexus, email: str, org_slug: str) -> Actor:
    r = await token_for(client, email, org=org_slug)
    assert r.status_code == 200, r.text
    body = r.json()
    me = (await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    return Actor(client, email, me["id"], me["org"]["id"], org_slug, body["access_token"], body["refresh_token"], nx)


async def new_org(client: httpx.AsyncClient, nx: Nexus) -> Actor:
    """A fresh organisation and its owner, signed in."""
    slug = f"org-{secrets.token_hex(5)}"
    email = f"owner@{slug}.test"
    await create_admin(nx.db, email, PASSWORD, slug)
    return await sign_in(client, nx, email, slug)


async def make_task(actor: Actor, **fields: Any) -> dict[str, Any]:
    body = {"title": f"Task {secrets.token_hex(3)}", **fields}
    r = await actor.post("/api/v1/tasks/tasks", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]
