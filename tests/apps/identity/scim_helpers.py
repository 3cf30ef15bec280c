"""Helpers for the SCIM tests: a SCIM token of a fresh org, and requests sent with it."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from nexus.kernel.config import Settings
from tests.factories import Actor, new_org

SCIM = "/scim/v2"
TOKENS = "/api/v1/identity/scim-tokens"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@dataclass
class Scim:
    """An org's owner and the SCIM client they connected."""

    owner: Actor
    token: str
    token_id: str

    @property
    def client(self) -> httpx.AsyncClient:
        return self.owner.client

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        if "json" in kw:
            from nexus.kernel.jsonutil import dumps

            kw["content"] = dumps(kw.pop("json"))
            headers.setdefault("Content-Type", "application/scim+json")
        return await self.client.request(method, SCIM + path, headers=headers, **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, **kw)

    async def patch(self, path: str, ops: list[dict[str, Any]], **kw: Any) -> httpx.Response:
        return await self.request("PATCH", path, json={"schemas": [PATCH_OP], "Operations": ops}, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    async def user(self, user_name: str | None = None, **fields: Any) -> dict[str, Any]:
        user_name = user_name or f"u-{secrets.token_hex(4)}@corp.test"
        body = {"schemas": [CORE_USER], "userName": user_name, "active": True, **fields}
        r = await self.post("/Users", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def group(self, name: str, members: list[str] | None = None) -> dict[str, Any]:
        body = {"schemas": [CORE_GROUP], "displayName": name, "members": [{"value": m} for m in members or []]}
        r = await self.post("/Groups", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


async def connect_scim(client: httpx.AsyncClient, nx: Any, owner: Actor | None = None, **token: Any) -> Scim:
    owner = owner or await new_org(client, nx)
    r = await owner.post(TOKENS, json={"name": "Okta", **token})
    assert r.status_code == 201, r.text
    return Scim(owner, r.json()["token"], r.json()["id"])


def assert_scim_error(r: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/scim+json"), r.headers
    body = r.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status), body
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """A real HTTP server (uvicorn) on a free port, serving NEXUS over the same database."""
    import uvicorn

    from nexus.kernel.http.app import Nexus

    port = free_port()
    app = Nexus(settings, run_background=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "the live server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
