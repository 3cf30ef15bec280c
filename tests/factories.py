"""Factories: organisations with signed-in people, and records made through the API."""

from __future__ import annotations

import hashlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import jwt

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


# -- identity: roles, API keys, tokens, audit -------------------------------------------


async def make_role(actor: Actor, permissions: list[str], name: str | None = None) -> dict[str, Any]:
    """A custom role of the actor's org, created through the API."""
    body = {"name": name or f"role-{secrets.token_hex(3)}", "permissions": permissions}
    r = await actor.post("/api/v1/identity/roles", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def make_api_key(actor: Actor, permissions: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    """An API key of the actor; the response is the only place its `key` is shown."""
    body = {"name": f"key-{secrets.token_hex(3)}", "permissions": permissions or [], **fields}
    r = await actor.post("/api/v1/identity/api-keys", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def with_credential(actor: Actor, credential: str) -> Actor:
    """The same person, sending another bearer credential (an API key, a forged token...)."""
    return replace(actor, token=credential)


def signing_key(nx: Nexus) -> bytes:
    """The access-token key, derived as nexus.kernel.auth.Authenticator derives it."""
    return hashlib.sha256(b"nexus-access-token\x00" + nx.settings.secret_key.encode()).digest()


def forge_token(nx: Nexus, actor: Actor, *, key: bytes | str | None = None, algorithm: str = "HS256",
                drop: tuple[str, ...] = (), **claims: Any) -> str:
    """An access token for the actor's session with claims changed, signed as asked."""
    base = jwt.decode(actor.token, options={"verify_signature": False})
    now = int(time.time())
    base.update({"iat": now, "exp": now + 600})
    base.update(claims)
    for name in drop:
        base.pop(name, None)
    return jwt.encode(base, signing_key(nx) if key is None else key, algorithm=algorithm)


@asynccontextmanager
async def client_at(nx: Nexus, addr: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client from its own address, so that failed sign-ins do not count against the
    shared test client's address (sign-in lockout is also per client address)."""
    addr = addr or f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    transport = httpx.ASGITransport(app=nx, client=(addr, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://nexus.test") as c:
        yield c


async def audit_rows(nx: Nexus, org_id: str, *, action: str | None = None, resource: str | None = None,
                     record_id: str | None = None) -> list[dict[str, Any]]:
    """Rows of kernel_audit for an org, oldest first, with before/after decoded."""
    from nexus.kernel.jsonutil import loads

    sql = ("SELECT actor_id, actor_kind, app, resource, record_id, action, before, after, client_addr"
           " FROM kernel_audit WHERE org_id = ?")
    args: list[Any] = [org_id]
    for col, val in (("action", action), ("resource", resource), ("record_id", record_id)):
        if val is not None:
            sql += f" AND {col} = ?"
            args.append(val)
    async with nx.db.reader() as conn:
        rows = await conn.fetch(sql + " ORDER BY at, id", args)
    names = ("actor_id", "actor_kind", "app", "resource", "record_id", "action", "before", "after", "client_addr")
    out = []
    for row in rows:
        d = dict(zip(names, row, strict=True))
        for k in ("before", "after"):
            if isinstance(d[k], (str, bytes)):
                d[k] = loads(d[k])
        out.append(d)
    return out


# -- tasks: projects, comments, actions, paging ------------------------------------------

TASKS = "/api/v1/tasks/tasks"


async def make_project(actor: Actor, **fields: Any) -> dict[str, Any]:
    body = {"name": f"Project {secrets.token_hex(3)}", **fields}
    r = await actor.post("/api/v1/tasks/projects", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def make_comment(actor: Actor, task_id: str, body: str = "Looks good") -> dict[str, Any]:
    r = await actor.post("/api/v1/tasks/comments", json={"task_id": task_id, "body": body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def task_action(actor: Actor, task_id: str, action: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """POST /api/v1/tasks/tasks/{id}/{action}, with a JSON body when given."""
    kw: dict[str, Any] = {} if body is None else {"json": body}
    return await actor.post(f"{TASKS}/{task_id}/{action}", **kw)


async def list_all(actor: Actor, url: str, params: dict[str, Any] | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Every item of a list, following next_cursor page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        p = {**(params or {}), "limit": limit}
        if cursor:
            p["cursor"] = cursor
        r = await actor.get(url, params=p)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("paging did not end")


def free_port() -> int:
    """A TCP port nobody listens on right now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
