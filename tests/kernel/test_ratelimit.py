"""Rate limits (kernel/ratelimit.py) on both back ends: per user, per API key and per client
address, by route class, with 429 + Retry-After and the RateLimit-* headers.

The suite's shared NEXUS has limits it never reaches (tests/conftest.py); these tests start
their own, with tight limits, on the same database, and a fixed clock so that no window ends
in the middle of a test."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import pytest_asyncio

from nexus.kernel.cache import RedisCache, cache_of
from nexus.kernel.config import DEFAULT_RATE_LIMITS, ConfigError, Settings, parse_rate_limits
from nexus.kernel.http.app import Nexus
from nexus.kernel.ratelimit import RateLimiter, limiter_of
from tests.factories import PASSWORD, Actor, make_api_key, make_task, new_org
from tests.kernel.test_cache import REDIS_URL, assert_no_keys_left, fresh_prefix, needs_redis

CACHES = ["memory", pytest.param("redis", marks=needs_redis)]
TIGHT = "read=3/60,write=2/60,auth=4/60,bulk=1/60"
NOW = 1_800_000_000.0  # a fixed wall clock: windows never end during a test


@pytest.fixture(params=CACHES)
def cache_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(loop_scope="session")
async def limited(settings: Settings, cache_kind: str) -> AsyncIterator[Callable[..., Awaitable[Nexus]]]:
    started: list[Nexus] = []
    prefixes: list[str] = []

    async def start(limits: str = TIGHT) -> Nexus:
        s = dataclasses.replace(settings, rate_limits=parse_rate_limits(limits))
        if cache_kind == "redis":
            prefixes.append(fresh_prefix())
            s = dataclasses.replace(s, redis_url=REDIS_URL, redis_prefix=prefixes[-1])
        nx = Nexus(s, run_background=False)
        await nx.startup()
        limiter_of(nx).clock = lambda: NOW
        started.append(nx)
        return nx

    yield start
    for nx in started:
        await nx.shutdown()
    for p in prefixes:
        await assert_no_keys_left(p)


def at(nx: Nexus, addr: str | None = None) -> httpx.AsyncClient:
    addr = addr or f"203.0.113.{secrets.randbelow(250) + 1}"
    transport = httpx.ASGITransport(app=nx, client=(addr, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://nexus.test")


def auth(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {actor.token}"}


def assert_limited(r: httpx.Response, limit: int, window: int = 60) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 429 and body["type"].endswith("/rate-limited")
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= window
    assert r.headers["ratelimit-limit"] == str(limit)
    assert r.headers["ratelimit-remaining"] == "0"
    assert int(r.headers["ratelimit-reset"]) == retry
    assert r.headers["ratelimit-policy"] == f"{limit};w={window}"


async def test_reads_are_limited_per_user_with_headers(client: httpx.AsyncClient, nx: Nexus,
                                                       limited: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    colleague = await owner.add_user(["admin"])
    lim = await limited()
    async with at(lim, "203.0.113.10") as c:
        remaining = []
        for _ in range(3):
            r = await c.get("/api/v1/tasks/tasks", headers=auth(owner))
            assert r.status_code == 200, r.text
            assert r.headers["ratelimit-limit"] == "3" and r.headers["ratelimit-policy"] == "3;w=60"
            assert 0 < int(r.headers["ratelimit-reset"]) <= 60
            remaining.append(r.headers["ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        assert_limited(await c.get("/api/v1/tasks/tasks", headers=auth(owner)), 3)
        assert_limited(await c.get("/api/v1/identity/me", headers=auth(owner)), 3)
        # Same address, another user: their own budget.
        r = await c.get("/api/v1/tasks/tasks", headers=auth(colleague))
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "2"
    async with at(lim) as elsewhere:  # the user from another address: still the same budget
        assert_limited(await elsewhere.get("/api/v1/tasks/tasks", headers=auth(owner)), 3)
    assert limiter_of(lim).rejections["read"] == 3


async def test_an_api_key_has_its_own_budget(client: httpx.AsyncClient, nx: Nexus,
                                             limited: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    key = (await make_api_key(owner, ["tasks.tasks.read"]))["key"]
    other_key = (await make_api_key(owner, ["tasks.tasks.read"]))["key"]
    lim = await limited()
    async with at(lim) as c:
        for _ in range(3):
            assert (await c.get("/api/v1/tasks/tasks", headers=auth(owner))).status_code == 200
        assert (await c.get("/api/v1/tasks/tasks", headers=auth(owner))).status_code == 429
        for _ in range(3):
            r = await c.get("/api/v1/tasks/tasks", headers={"X-API-Key": key})
            assert r.status_code == 200, r.text
        assert_limited(await c.get("/api/v1/tasks/tasks", headers={"Authorization": f"Bearer {key}"}), 3)
        assert (await c.get("/api/v1/tasks/tasks", headers={"X-API-Key": other_key})).status_code == 200


async def test_anonymous_and_failed_requests_count_per_address(client: httpx.AsyncClient, nx: Nexus,
                                                               limited: Callable[..., Awaitable[Nexus]]) -> None:
    lim = await limited()
    async with at(lim, "203.0.113.20") as c, at(lim, "203.0.113.21") as d:
        for _ in range(3):
            r = await c.get("/api/v1/auth/status")  # a public route
            assert r.status_code == 200 and "ratelimit-remaining" in r.headers
        assert_limited(await c.get("/api/v1/auth/status"), 3)
        # Failed authentication counts against the address too, and still answers 401 until then.
        bad = {"Authorization": "Bearer not-a-token"}
        for _ in range(3):
            r = await d.get("/api/v1/tasks/tasks", headers=bad)
            assert r.status_code == 401 and r.headers["ratelimit-limit"] == "3"
        assert_limited(await d.get("/api/v1/tasks/tasks", headers=bad), 3)
        assert_limited(await d.get("/api/v1/auth/status"), 3)
    async with at(lim, "203.0.113.22") as e:
        assert (await e.get("/api/v1/auth/status")).status_code == 200


async def test_route_classes_do_not_interfere(client: httpx.AsyncClient, nx: Nexus,
                                              limited: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    task = await make_task(owner)
    lim = await limited()
    async with at(lim) as c:
        h = auth(owner)
        for i in range(2):
            r = await c.post("/api/v1/tasks/tasks", json={"title": f"t{i}"}, headers=h)
            assert r.status_code == 201 and r.headers["ratelimit-limit"] == "2"
        assert_limited(await c.patch(f"/api/v1/tasks/tasks/{task['id']}", json={"title": "x"}, headers=h), 2)
        # Writes are spent; reads and bulk are not.
        r = await c.get(f"/api/v1/tasks/tasks/{task['id']}", headers=h)
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "2"
        r = await c.get("/api/v1/tasks/tasks/export", params={"format": "json"}, headers=h)
        assert r.status_code == 200 and r.headers["ratelimit-limit"] == "1", r.text
        assert_limited(await c.get("/api/v1/tasks/tasks/export", params={"format": "csv"}, headers=h), 1)
        assert_limited(await c.post("/api/v1/tasks/tasks/import", content=b"[]",
                                    headers={**h, "Content-Type": "application/json"}), 1)
        assert (await c.get("/api/v1/tasks/tasks", headers=h)).status_code == 200
        # Health, readiness and metrics are never limited.
        for _ in range(10):
            r = await c.get("/healthz")
            assert r.status_code == 200 and "ratelimit-limit" not in r.headers
    rejected = limiter_of(lim).rejections
    assert rejected["write"] == 1 and rejected["bulk"] == 2 and rejected["read"] == 0


async def test_the_auth_class_protects_the_token_endpoint_per_address(
        client: httpx.AsyncClient, nx: Nexus, limited: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    lim = await limited()
    async with at(lim, "203.0.113.30") as c:
        for i in range(4):  # guesses at several accounts, all from one address
            r = await c.post("/api/v1/auth/token", data={"grant_type": "password", "username": f"x{i}@nowhere.test",
                                                         "password": "wrong password"})
            assert r.status_code in (400, 401) and r.headers["ratelimit-limit"] == "4", r.text
        r = await c.post("/api/v1/auth/token", data={"grant_type": "password", "username": owner.email,
                                                     "password": PASSWORD, "org": owner.org_slug})
        assert_limited(r, 4)
        assert_limited(await c.post("/api/v1/auth/revoke", data={"token": "x"}), 4)
        # Signed-in requests from that address keep their own (read) budget.
        assert (await c.get("/api/v1/identity/me", headers=auth(owner))).status_code == 200
    async with at(lim, "203.0.113.31") as d:
        r = await d.post("/api/v1/auth/token", data={"grant_type": "password", "username": owner.email,
                                                     "password": PASSWORD, "org": owner.org_slug})
        assert r.status_code == 200, r.text
        assert r.headers["ratelimit-remaining"] == "3"


async def test_a_window_ends_and_the_budget_comes_back(client: httpx.AsyncClient, nx: Nexus,
                                                       limited: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    lim = await limited("read=2/10")
    limiter = limiter_of(lim)
    async with at(lim) as c:
        for _ in range(2):
            assert (await c.get("/api/v1/identity/me", headers=auth(owner))).status_code == 200
        r = await c.get("/api/v1/identity/me", headers=auth(owner))
        assert_limited(r, 2, window=10)
        limiter.clock = lambda: NOW + int(r.headers["retry-after"])
        r = await c.get("/api/v1/identity/me", headers=auth(owner))
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "1"
        assert r.headers["ratelimit-reset"] == "10"


async def test_an_app_can_put_a_route_in_another_class(client: httpx.AsyncClient, nx: Nexus,
                                                       limited: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    lim = await limited()
    limiter = limiter_of(lim)
    limiter.assign("GET", "/api/v1/identity/me", "bulk")
    with pytest.raises(ValueError, match="unknown rate-limit class"):
        limiter.assign("GET", "/api/v1/identity/me", "nope")
    async with at(lim) as c:
        r = await c.get("/api/v1/identity/me", headers=auth(owner))
        assert r.status_code == 200 and r.headers["ratelimit-limit"] == "1"
        assert_limited(await c.get("/api/v1/identity/me", headers=auth(owner)), 1)
        assert (await c.get("/api/v1/tasks/tasks", headers=auth(owner))).status_code == 200


async def test_a_class_set_off_is_not_limited(client: httpx.AsyncClient, nx: Nexus,
                                              limited: Callable[..., Awaitable[Nexus]]) -> None:
    owner = await new_org(client, nx)
    lim = await limited("read=off,write=1/60")
    async with at(lim) as c:
        for _ in range(5):
            r = await c.get("/api/v1/identity/me", headers=auth(owner))
            assert r.status_code == 200 and "ratelimit-limit" not in r.headers


async def test_the_counters_live_in_the_configured_cache(client: httpx.AsyncClient, nx: Nexus,
                                                         limited: Callable[..., Awaitable[Nexus]],
                                                         cache_kind: str) -> None:
    owner = await new_org(client, nx)
    lim = await limited()
    async with at(lim) as c:
        await c.get("/api/v1/identity/me", headers=auth(owner))
    cache = cache_of(lim)
    assert cache.backend == cache_kind
    if isinstance(cache, RedisCache):
        keys = await cache.keys()
        assert len(keys) == 1 and keys[0].startswith(f"rl:read:user:{owner.user_id}:")
        assert 0 < await cache.client.pttl(cache.prefix + keys[0]) <= 61_000  # counters expire


@needs_redis
async def test_processes_sharing_redis_share_the_budget(client: httpx.AsyncClient, nx: Nexus,
                                                        settings: Settings) -> None:
    owner = await new_org(client, nx)
    prefix = fresh_prefix()
    s = dataclasses.replace(settings, rate_limits=parse_rate_limits(TIGHT), redis_url=REDIS_URL, redis_prefix=prefix)
    a, b = Nexus(s, run_background=False), Nexus(s, run_background=False)
    try:
        for proc in (a, b):
            await proc.startup()
            limiter_of(proc).clock = lambda: NOW
        async with at(a) as ca, at(b) as cb:
            assert (await ca.get("/api/v1/identity/me", headers=auth(owner))).status_code == 200
            assert (await cb.get("/api/v1/identity/me", headers=auth(owner))).status_code == 200
            assert (await ca.get("/api/v1/identity/me", headers=auth(owner))).status_code == 200
            assert_limited(await cb.get("/api/v1/identity/me", headers=auth(owner)), 3)
    finally:
        for proc in (a, b):
            await proc.shutdown()
    await assert_no_keys_left(prefix)


@needs_redis
async def test_limits_fail_open_when_redis_is_down(client: httpx.AsyncClient, nx: Nexus, settings: Settings) -> None:
    owner = await new_org(client, nx)
    s = dataclasses.replace(settings, rate_limits=parse_rate_limits("read=1/60"), redis_url="redis://127.0.0.1:1/0")
    down = Nexus(s, run_background=False)
    await down.startup()
    try:
        async with at(down) as c:
            for _ in range(3):
                r = await c.get("/api/v1/identity/me", headers=auth(owner))
                assert r.status_code == 200 and "ratelimit-limit" not in r.headers
    finally:
        await down.shutdown()


def test_the_suite_default_settings_never_trip_limits(settings: Settings) -> None:
    assert all(n >= 100_000 for n, _ in settings.rate_limits.values())


def test_rate_limit_settings_are_validated() -> None:
    assert parse_rate_limits("") == DEFAULT_RATE_LIMITS
    assert DEFAULT_RATE_LIMITS == {"read": (1200, 60), "write": (300, 60), "auth": (20, 60), "bulk": (10, 60)}
    got = parse_rate_limits(" auth=5/300 , read=off,bulk=7")
    assert got == {"read": (0, 60), "write": (300, 60), "auth": (5, 300), "bulk": (7, 60)}
    assert all(n == 0 for n, _ in parse_rate_limits("off").values())
    for bad in ("reed=1/60", "read", "read=many/60", "read=10/0", "read=10/100000", "read=-1/60"):
        with pytest.raises(ConfigError, match="NEXUS_RATE_LIMITS"):
            parse_rate_limits(bad)
    with pytest.raises(ConfigError, match="read, write, auth, bulk"):
        Settings.from_env({"NEXUS_SECRET_KEY": "k" * 40, "NEXUS_DATA_DIR": "/tmp", "NEXUS_RATE_LIMITS": "x=1/1"})
    s = Settings.from_env({"NEXUS_SECRET_KEY": "k" * 40, "NEXUS_DATA_DIR": "/tmp",
                           "NEXUS_RATE_LIMITS": "read=1200/60,write=300/60,auth=20/60,bulk=10/60"})
    assert s.rate_limits == DEFAULT_RATE_LIMITS


def test_classification() -> None:
    limiter = RateLimiter.__new__(RateLimiter)
    limiter.routes = {}
    c = limiter.classify
    assert c("POST", "/api/v1/auth/token", "/api/v1/auth/token") == "auth"
    assert c("POST", "/api/v1/auth/session", None) == "auth"
    assert c("GET", "/api/v1/auth/status", "/api/v1/auth/status") == "read"
    assert c("GET", "/api/v1/crm/contacts/export", "/api/v1/{app}/{resource}/{id}") == "bulk"
    assert c("POST", "/api/v1/crm/contacts/import", "/api/v1/{app}/{resource}/{id}") == "bulk"
    assert c("DELETE", "/api/v1/crm/contacts/1", "/api/v1/{app}/{resource}/{id}") == "write"
    assert c("HEAD", "/api/v1/crm/contacts", "/api/v1/{app}/{resource}") == "read"
    assert c("GET", "/healthz", "/healthz") is None and c("GET", "/metrics", "/metrics") is None
