"""The shared cache (kernel/cache.py) on both back ends, and principal-cache invalidation
carried between processes through Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from nexus.kernel.cache import Cache, InProcessCache, RedisCache, cache_of, create_cache
from nexus.kernel.config import Settings
from nexus.kernel.http.app import Nexus
from tests.factories import new_org

REDIS_URL = os.environ.get("NEXUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_up() -> bool:
    host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host.rsplit("@", 1)[-1] or "127.0.0.1", int(port or 6379)), timeout=1):
            return True
    except OSError:
        return False


REDIS = redis_up()
needs_redis = pytest.mark.skipif(not REDIS, reason="no Redis at " + REDIS_URL)
CACHES = ["memory", pytest.param("redis", marks=needs_redis)]


def fresh_prefix() -> str:
    return f"nexus-test-{os.getpid()}-{secrets.token_hex(4)}:"


async def assert_no_keys_left(prefix: str) -> None:
    probe = RedisCache(REDIS_URL, prefix)
    try:
        await probe.clear()
        assert await probe.keys() == []
    finally:
        await probe.close()


@pytest_asyncio.fixture(params=CACHES)
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    c: Cache
    if request.param == "redis":
        prefix = fresh_prefix()
        c = RedisCache(REDIS_URL, prefix)
    else:
        c = InProcessCache()
    await c.start()
    yield c
    await c.close()
    if isinstance(c, RedisCache):
        await assert_no_keys_left(c.prefix)


async def eventually(pred: Callable[[], Awaitable[bool] | bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = pred()
        if not isinstance(got, bool):
            got = await got
        if got:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def test_values_round_trip_as_copies(cache: Cache) -> None:
    value = {"name": "Ada", "tags": ["a", "b"], "n": 3, "ok": True, "none": None}
    await cache.set("user:1", value)
    got = await cache.get("user:1")
    assert got == value
    got["tags"].append("c")
    assert (await cache.get("user:1"))["tags"] == ["a", "b"]
    await cache.set("user:1", "replaced")
    assert await cache.get("user:1") == "replaced"
    await cache.delete("user:1")
    assert await cache.get("user:1") is None
    await cache.delete("never-set")
    assert await cache.get("never-set") is None


async def test_values_expire_after_their_ttl(cache: Cache) -> None:
    await cache.set("short", 1, ttl=0.15)
    await cache.set("long", 2, ttl=30)
    await cache.set("forever", 3)
    assert await cache.get("short") == 1
    await asyncio.sleep(0.3)
    assert await cache.get("short") is None
    assert await cache.get("long") == 2 and await cache.get("forever") == 3
    for k in ("long", "forever"):
        await cache.delete(k)


async def test_counters_are_atomic_and_expire_with_their_first_ttl(cache: Cache) -> None:
    assert await cache.incr("hits", ttl=0.3) == 1
    results = await asyncio.gather(*(cache.incr("hits", ttl=0.3) for _ in range(50)))
    assert sorted(results) == list(range(2, 52))
    assert await cache.incr("hits", 10, ttl=0.3) == 61
    assert await cache.get("hits") == 61
    # Later increments do not extend the first expiry: the counter is a fixed window.
    await asyncio.sleep(0.45)
    assert await cache.get("hits") is None
    assert await cache.incr("hits", ttl=5) == 1
    await cache.delete("hits")
    assert await cache.incr("plain") == 1 and await cache.incr("plain", -3) == -2
    await cache.delete("plain")


async def test_a_counter_over_a_non_integer_is_refused(cache: Cache) -> None:
    await cache.set("word", "hello")
    with pytest.raises(Exception, match="integer"):
        await cache.incr("word")
    await cache.delete("word")


async def test_publish_reaches_subscribers(cache: Cache) -> None:
    got: list[str | None] = []
    cache.subscribe("news", got.append)
    if isinstance(cache, RedisCache):
        await cache.close()  # subscriptions are taken at start()
        await cache.start()
    await cache.publish("news", "hello")
    await cache.publish("other", "not for us")
    await eventually(lambda: got == ["hello"])


async def test_in_process_cache_makes_room_when_full() -> None:
    c = InProcessCache(max_items=10)
    for i in range(5):
        await c.set(f"old{i}", i, ttl=0.01)
    await asyncio.sleep(0.03)
    for i in range(5):
        await c.set(f"live{i}", i)
    await c.set("one-more", 1)  # full: the expired keys go, the live ones stay
    assert all([await c.get(f"live{i}") == i for i in range(5)])
    for i in range(20):
        await c.incr(f"n{i}", ttl=60)
    assert len(c) <= 10
    assert await c.get("n19") == 1  # the newest stays; the oldest went first


@needs_redis
async def test_redis_caches_share_keys_and_channels_under_one_prefix_only() -> None:
    prefix = fresh_prefix()
    a, b, stranger = RedisCache(REDIS_URL, prefix), RedisCache(REDIS_URL, prefix), RedisCache(REDIS_URL, fresh_prefix())
    got_b: list[str | None] = []
    got_stranger: list[str | None] = []
    b.subscribe("ch", got_b.append)
    stranger.subscribe("ch", got_stranger.append)
    try:
        for c in (a, b, stranger):
            await c.start()
        await a.set("k", {"v": 1}, ttl=60)
        assert await b.get("k") == {"v": 1}
        assert await stranger.get("k") is None
        await a.incr("n", ttl=60)
        assert await b.incr("n", ttl=60) == 2
        ttl_ms = await a.client.pttl(prefix + "n")
        assert 0 < ttl_ms <= 60_000
        assert sorted(await a.keys()) == ["k", "n"]
        await a.publish("ch", "m1")
        await eventually(lambda: got_b == ["m1"])
        await asyncio.sleep(0.1)
        assert got_stranger == []
    finally:
        await a.clear()
        for c in (a, b, stranger):
            await c.close()
    await assert_no_keys_left(prefix)


@needs_redis
async def test_redis_down_fails_soft_at_start() -> None:
    c = RedisCache("redis://127.0.0.1:1/0", fresh_prefix(), timeout=0.5)
    c.subscribe("ch", lambda m: None)
    await c.start()  # logs, does not raise: the process still starts
    with pytest.raises(Exception):
        await c.get("k")
    await c.close()


def test_the_back_end_follows_the_settings(settings: Settings) -> None:
    assert isinstance(create_cache(settings), InProcessCache)
    s = dataclasses.replace(settings, redis_url="redis://127.0.0.1:6379/0", redis_prefix="p:")
    c = create_cache(s)
    assert isinstance(c, RedisCache) and c.prefix == "p:"


# -- principal cache invalidation across processes --------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def processes(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[Nexus]]]:
    """Start extra NEXUS processes (in this process, each its own Nexus) on the test database."""
    started: list[Nexus] = []
    prefixes: set[str] = set()

    async def start(redis_prefix: str | None = None) -> Nexus:
        s = settings
        if redis_prefix is not None:
            s = dataclasses.replace(settings, redis_url=REDIS_URL, redis_prefix=redis_prefix)
            prefixes.add(redis_prefix)
        nx = Nexus(s, run_background=False)
        await nx.startup()
        started.append(nx)
        return nx

    yield start
    for nx in started:
        await nx.shutdown()
    for p in prefixes:
        await assert_no_keys_left(p)


async def me(nx: Nexus, token: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=nx, client=("198.51.100.8", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://nexus.test") as c:
        return await c.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {token}"})


@needs_redis
async def test_invalidation_reaches_every_process_through_redis(
        client: httpx.AsyncClient, nx: Nexus, processes: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    prefix = fresh_prefix()
    a = await processes(prefix)
    b = await processes(prefix)
    other = await processes(fresh_prefix())  # another installation sharing the Redis
    assert cache_of(a).backend == "redis"
    for proc in (a, b, other):
        assert (await me(proc, owner.token)).status_code == 200
        assert len(proc.auth.cache) == 1
    a.auth.invalidate_all()  # what identity calls on a revocation, in process A only
    assert len(a.auth.cache) == 0
    await eventually(lambda: len(b.auth.cache) == 0)
    await asyncio.sleep(0.1)
    assert len(other.auth.cache) == 1  # another prefix, another installation


async def test_without_redis_invalidation_stays_in_its_process(
        client: httpx.AsyncClient, nx: Nexus, processes: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    a = await processes()
    b = await processes()
    assert cache_of(a).backend == "memory"
    for proc in (a, b):
        assert (await me(proc, owner.token)).status_code == 200
    a.auth.invalidate_all()
    await asyncio.sleep(0.05)
    assert len(a.auth.cache) == 0 and len(b.auth.cache) == 1  # the 5 s TTL bounds staleness


@needs_redis
async def test_a_revoked_session_is_refused_by_another_process_at_once(
        client: httpx.AsyncClient, nx: Nexus, processes: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    prefix = fresh_prefix()
    a = await processes(prefix)
    b = await processes(prefix)
    assert (await me(b, owner.token)).status_code == 200  # B caches the principal
    transport = httpx.ASGITransport(app=a, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://nexus.test") as ca:
        r = await ca.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {owner.token}"})
    assert r.status_code == 204, r.text
    await eventually(lambda: len(b.auth.cache) == 0)
    assert (await me(b, owner.token)).status_code == 401


@needs_redis
async def test_a_lost_subscription_clears_the_principal_cache(
        client: httpx.AsyncClient, nx: Nexus, processes: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    b = await processes(fresh_prefix())
    assert (await me(b, owner.token)).status_code == 200
    cache: Any = cache_of(b)
    await cache._pubsub.aclose()  # the connection drops: messages may be lost meanwhile
    await eventually(lambda: len(b.auth.cache) == 0)
    await eventually(lambda: cache._pubsub is not None)
