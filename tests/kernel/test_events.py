"""Events: outbox dispatch, idempotent subscribers, ordering, dead letters, the polling API."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from nexus.kernel import events as events_mod
from nexus.kernel.http.app import Nexus
from nexus.kernel.records import UnitOfWork
from tests.factories import Actor, make_task, new_org


async def wait_for(pred, timeout: float = 10.0) -> Any:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await pred()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def events_of(actor: Actor, **params: Any) -> list[dict[str, Any]]:
    r = await actor.get("/api/v1/events", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_a_change_and_its_event_arrive_in_order(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    task = await make_task(owner, title="evented")
    await owner.patch(f"/api/v1/tasks/tasks/{task['id']}", json={"priority": 3})
    await owner.post(f"/api/v1/tasks/tasks/{task['id']}/complete")

    async def mine() -> list[dict[str, Any]]:
        evs = [e for e in await events_of(owner) if e["subject"] == task["id"]]
        return evs if len(evs) >= 3 else []

    evs = await wait_for(mine)
    assert [e["type"] for e in evs] == ["nexus.tasks.task.created", "nexus.tasks.task.updated",
                                        "nexus.tasks.task.completed"]
    first = evs[0]
    assert first["specversion"] == "1.0" and first["source"] == "/nexus/tasks"
    assert first["data"]["record"]["title"] == "evented" and first["nexusorgid"] == owner.org_id
    positions = [e["nexusposition"] for e in evs]
    assert positions == sorted(positions)
    later = await events_of(owner, after=positions[0])
    assert [e["id"] for e in later if e["subject"] == task["id"]] == [e["id"] for e in evs[1:]]
    stranger = await new_org(client, nx)
    assert all(e["nexusorgid"] == stranger.org_id for e in await events_of(stranger))


async def test_subscribers_get_each_event_once(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    seen: list[str] = []

    async def handler(uow: UnitOfWork, event: dict[str, Any]) -> None:
        if event["nexusorgid"] == owner.org_id:
            seen.append(event["id"])

    nx.events.subscribe(f"test-once-{owner.org_id}", "nexus.tasks.task.*", handler)
    task = await make_task(owner)
    await wait_for(lambda: _ready(seen))
    # Redeliver everything: the kernel's dedup keeps the consumer from seeing it twice.
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE kernel_outbox SET dispatched_at = NULL WHERE org_id = ?", [owner.org_id])
    nx.events.wake()

    async def redispatched() -> bool:
        async with nx.db.reader() as conn:
            return not await conn.fetchval(
                "SELECT count(*) FROM kernel_outbox WHERE org_id = ? AND dispatched_at IS NULL", [owner.org_id])

    await wait_for(redispatched)
    assert len(seen) == len(set(seen)) == 1
    async with nx.db.reader() as conn:
        subject = await conn.fetchval("SELECT subject FROM kernel_outbox WHERE id = ?", [seen[0]])
    assert subject == task["id"]


async def _ready(xs: list[Any]) -> bool:
    return bool(xs)


async def test_failing_subscriber_is_retried_then_dead_lettered(client: httpx.AsyncClient, nx: Nexus,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    owner = await new_org(client, nx)
    monkeypatch.setattr(events_mod, "MAX_ATTEMPTS", 3)
    calls: list[str] = []

    async def flaky(uow: UnitOfWork, event: dict[str, Any]) -> None:
        if event["nexusorgid"] == owner.org_id and event["data"]["record"]["title"] == "poison":
            calls.append(event["id"])
            raise RuntimeError("downstream is down")

    nx.events.subscribe(f"test-flaky-{owner.org_id}", "nexus.tasks.task.created", flaky)
    poison = await make_task(owner, title="poison")
    after = await make_task(owner, title="after the poison")

    consumer = f"test-flaky-{owner.org_id}"

    async def settled() -> Any:
        # the consumer moved past the poison (dead for it) and handled the event after it
        async with nx.db.reader() as conn:
            row = await conn.fetchrow("SELECT attempts, error, id FROM kernel_outbox WHERE subject = ?",
                                      [poison["id"]])
            later = await conn.fetchval(
                "SELECT count(*) FROM kernel_event_consumption c JOIN kernel_outbox o ON o.id = c.event_id"
                " WHERE c.consumer = ? AND o.subject = ?", [consumer, after["id"]])
        return row if later else None

    row = await wait_for(settled, 30)
    assert row[0] == 3 and "downstream is down" in row[1] and consumer in row[1]
    assert len(calls) == 3
    # other consumers were not held by this one's failure
    async with nx.db.reader() as conn:
        webhooks = await conn.fetchval(
            "SELECT count(*) FROM kernel_event_consumption WHERE consumer = 'kernel.webhooks' AND event_id = ?",
            [row[2]])
    assert webhooks == 1


async def test_event_types_are_listed_with_schemas(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    items = (await owner.get("/api/v1/events/types")).json()["items"]
    by_type = {t["type"]: t for t in items}
    for t in ("nexus.tasks.task.created", "nexus.tasks.task.completed", "nexus.tasks.project.archived",
              "nexus.identity.user.deactivated"):
        assert t in by_type, t
    assert by_type["nexus.tasks.task.created"]["schema"]["type"] == "object"
    assert (await owner.get("/api/v1/events", params={"after": "x"})).status_code == 400
    assert (await owner.get("/api/v1/events", params={"bogus": "1"})).status_code == 400


async def test_events_are_filtered_by_permission(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await make_task(owner, title="secret plan")
    r = await owner.post("/api/v1/identity/api-keys", json={"name": "projects only",
                                                             "permissions": ["tasks.projects.read"]})
    assert r.status_code == 201, r.text
    key = r.json()["key"]

    async def dispatched() -> list[dict[str, Any]]:
        return [e for e in await events_of(owner) if e["type"] == "nexus.tasks.task.created"]

    await wait_for(dispatched)
    r = await client.get("/api/v1/events", params={"limit": 1000}, headers={"X-API-Key": key})
    assert r.status_code == 200
    assert not [e for e in r.json()["items"] if e["type"].startswith("nexus.tasks.task.")]
