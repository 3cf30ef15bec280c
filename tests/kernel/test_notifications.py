"""In-app notifications: raised in a unit of work, listed, read, switched off, private."""

from __future__ import annotations

import httpx

from nexus.kernel.context import Context, Principal
from nexus.kernel.http.app import Nexus
from nexus.kernel.notifications import register_type
from nexus.kernel.records import UnitOfWork
from tests.factories import Actor, new_org
from tests.kernel.test_events import wait_for


async def notify(nx: Nexus, sender: Actor, recipient: Actor, title: str = "Ping") -> str | None:
    ctx = Context(Principal(sender.user_id, sender.org_id, "user", frozenset({"*"})))
    async with UnitOfWork(nx.db, ctx) as uow:
        return await uow.notify(recipient.user_id, "test.ping", title, "body text", "/tasks/1", {"k": 1})


async def test_notify_list_read_and_preferences(client: httpx.AsyncClient, nx: Nexus) -> None:
    register_type(nx, "test.ping", "Someone pinged you")
    owner = await new_org(client, nx)
    bob = await owner.add_user(["member"])
    nid = await notify(nx, owner, bob, "Hello Bob")
    assert nid
    assert await notify(nx, owner, owner) is None, "nobody is notified of their own doing"
    page = (await bob.get("/api/v1/notifications")).json()
    assert page["unread_count"] == 1 and page["items"][0]["title"] == "Hello Bob"
    assert page["items"][0]["actor_id"] == owner.user_id and page["items"][0]["data"] == {"k": 1}
    assert (await owner.get("/api/v1/notifications")).json()["items"] == []
    assert (await owner.post(f"/api/v1/notifications/{nid}/read")).status_code == 404
    assert (await bob.post(f"/api/v1/notifications/{nid}/read")).status_code == 204
    assert (await bob.get("/api/v1/notifications", params={"unread": "true"})).json()["items"] == []
    prefs = (await bob.get("/api/v1/notifications/preferences")).json()["items"]
    assert {"type": "test.ping", "description": "Someone pinged you", "in_app": True, "email": False} in prefs
    r = await bob.request("PUT", "/api/v1/notifications/preferences/test.ping", json={"in_app": False})
    assert r.status_code == 200
    assert await notify(nx, owner, bob, "muted") is None
    r = await bob.request("PUT", "/api/v1/notifications/preferences/no.such.type", json={"in_app": False})
    assert r.status_code == 404
    await bob.request("PUT", "/api/v1/notifications/preferences/test.ping", json={"in_app": True})
    await notify(nx, owner, bob, "second")
    await notify(nx, owner, bob, "third")
    r = await bob.post("/api/v1/notifications/read-all")
    assert r.json() == {"marked": 2}
    assert (await bob.get("/api/v1/notifications", params={"limit": "0"})).status_code == 400


async def test_notification_events_reach_only_the_recipient(client: httpx.AsyncClient, nx: Nexus) -> None:
    register_type(nx, "test.ping", "Someone pinged you")
    owner = await new_org(client, nx)
    bob = await owner.add_user(["member"])
    carol = await owner.add_user(["member"])
    nid = await notify(nx, owner, bob, "for bob only")

    async def bob_sees() -> list[dict[str, object]]:
        r = await bob.get("/api/v1/events", params={"type": "nexus.notifications.notification.created"})
        return [e for e in r.json()["items"] if e["subject"] == nid]

    assert await wait_for(bob_sees)
    r = await carol.get("/api/v1/events", params={"type": "nexus.notifications.notification.created"})
    assert [e for e in r.json()["items"] if e["subject"] == nid] == []
