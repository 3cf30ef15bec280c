"""Cache, counters and a small broadcast channel (DESIGN.md §1): in-process by default,
Redis when NEXUS_REDIS_URL is set.

* `TTLCache` — a plain synchronous in-process map with expiry (the principal cache).
* `Cache` — what the kernel and apps share across processes: `get`/`set`/`delete` of
  JSON values and atomic `incr` counters, each with an optional TTL, plus `publish` /
  `subscribe` on named channels. `InProcessCache` serves one process; `RedisCache` every
  process pointed at the same Redis (keys and channels under `NEXUS_REDIS_PREFIX`).
* `install(nx)` makes `nx.cache` and, with Redis, carries principal-cache invalidation to
  every process: `Authenticator.invalidate_all()` publishes on a channel and each process
  clears its principal cache when the message arrives (or when its subscription was
  interrupted and messages may have been lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nexus.kernel.jsonutil import dumps, loads

if TYPE_CHECKING:
    from nexus.kernel.config import Settings
    from nexus.kernel.http.app import Nexus

log = logging.getLogger("nexus.cache")

# A subscriber gets each message's text, or None when messages may have been lost
# (the connection to Redis dropped and came back): it should then assume the worst.
MessageHandler = Callable[[str | None], None]

PRINCIPAL_CHANNEL = "auth:invalidate"


class TTLCache:
    def __init__(self, ttl: float, max_items: int = 100_000) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._data: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return hit[1]

    def set(self, key: Any, value: Any, ttl: float | None = None) -> None:
        if len(self._data) >= self.max_items:
            self._data.clear()
        self._data[key] = (time.monotonic() + (self.ttl if ttl is None else ttl), value)

    def delete(self, key: Any) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class Cache(ABC):
    """Shared cache and counters. Values are anything JSON can carry; a value read back is a
    fresh copy (never the object that was stored). `ttl` is in seconds; None keeps the key
    until it is deleted (or, in process, evicted when the cache is full)."""

    backend: str = ""

    def __init__(self) -> None:
        self._handlers: dict[str, list[MessageHandler]] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self.closed = False

    @abstractmethod
    async def get(self, key: str) -> Any: ...

    @abstractmethod
    async def set(self, key: str, value: Any, ttl: float | None = None) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    @abstractmethod
    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add `amount` to an integer counter (a missing key counts from 0) and return the
        new value, atomically. `ttl` applies when the counter has no expiry yet, so a
        fixed window's counter expires with the window however often it is incremented."""

    @abstractmethod
    async def publish(self, channel: str, message: str) -> None:
        """Deliver `message` to every subscriber of `channel` (in every process, with Redis)."""

    def subscribe(self, channel: str, handler: MessageHandler) -> None:
        """Register a handler; with Redis it listens from `start()` on (call this before)."""
        self._handlers.setdefault(channel, []).append(handler)

    def publish_soon(self, channel: str, message: str) -> None:
        """`publish` from synchronous code: sent in the background; a failure is logged."""
        if self.closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._publish_logged(channel, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish_logged(self, channel: str, message: str) -> None:
        try:
            await self.publish(channel, message)
        except Exception as exc:
            log.warning("cache publish failed", extra={"fields": {"channel": channel, "error": str(exc)[:300]}})

    def _deliver(self, channel: str, message: str | None) -> None:
        for handler in self._handlers.get(channel, ()):
            try:
                handler(message)
            except Exception:
                log.exception("cache message handler failed", extra={"fields": {"channel": channel}})

    async def start(self) -> None:
        """Connect and start listening to subscribed channels (nothing to do in process)."""
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        for task in list(self._pending):
            with contextlib.suppress(Exception):
                await task


class InProcessCache(Cache):
    """One process's cache. Expired keys are swept when the map is full; if it is still full
    the oldest keys go first."""

    backend = "memory"

    def __init__(self, max_items: int = 200_000) -> None:
        super().__init__()
        self.max_items = max_items
        self._data: dict[str, tuple[float | None, Any]] = {}

    def _live(self, key: str) -> tuple[float | None, Any] | None:
        hit = self._data.get(key)
        if hit is not None and hit[0] is not None and hit[0] <= time.monotonic():
            del self._data[key]
            return None
        return hit

    def _make_room(self) -> None:
        if len(self._data) < self.max_items:
            return
        now = time.monotonic()
        for k in [k for k, (exp, _) in self._data.items() if exp is not None and exp <= now]:
            del self._data[k]
        excess = len(self._data) - int(self.max_items * 0.9)
        if excess > 0:
            for k in list(self._data)[:excess]:
                del self._data[k]

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else time.monotonic() + ttl

    async def get(self, key: str) -> Any:
        hit = self._live(key)
        if hit is None:
            return None
        value = hit[1]
        return value if isinstance(value, int) else loads(value)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if key not in self._data:
            self._make_room()
        self._data[key] = (self._expiry(ttl), dumps(value))

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        hit = self._live(key)
        if hit is None:
            self._make_room()
            self._data[key] = (self._expiry(ttl), amount)
            return amount
        expiry, value = hit
        if not isinstance(value, int):
            try:
                value = int(loads(value))
            except (ValueError, TypeError):
                raise ValueError(f"cache key {key!r} does not hold an integer") from None
        value += amount
        self._data[key] = (self._expiry(ttl) if expiry is None else expiry, value)
        return value

    async def publish(self, channel: str, message: str) -> None:
        self._deliver(channel, message)

    def __len__(self) -> int:
        return len(self._data)


# INCRBY, then give the key its expiry if it has none (first increment of a window, or a key
# that somehow lost it): one round trip, atomic.
_INCR_LUA = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n
"""


class RedisCache(Cache):
    """Every process pointed at the same Redis shares keys, counters and channels. Commands
    time out after `timeout` seconds, so a stalled Redis slows requests by at most that."""

    backend = "redis"

    def __init__(self, url: str, prefix: str = "nexus:", timeout: float = 1.0) -> None:
        super().__init__()
        import redis.asyncio as aioredis

        self.url = url
        self.prefix = prefix
        self.client: Any = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                             health_check_interval=30)
        self._incr = self.client.register_script(_INCR_LUA)
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed: set[str] = set()

    def _k(self, key: str) -> str:
        return self.prefix + key

    async def get(self, key: str) -> Any:
        raw = await self.client.get(self._k(key))
        return None if raw is None else loads(raw)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        await self.client.set(self._k(key), dumps(value), px=None if ttl is None else max(1, int(ttl * 1000)))

    async def delete(self, key: str) -> None:
        await self.client.delete(self._k(key))

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        ms = 0 if ttl is None else max(1, int(ttl * 1000))
        return int(await self._incr(keys=[self._k(key)], args=[amount, ms]))

    async def publish(self, channel: str, message: str) -> None:
        await self.client.publish(self._k(channel), message)

    async def keys(self) -> list[str]:
        """Every key under this cache's prefix (operators and tests; SCAN, never KEYS)."""
        found = [k.decode() async for k in self.client.scan_iter(match=self.prefix + "*", count=500)]
        return [k[len(self.prefix):] for k in found]

    async def clear(self) -> int:
        """Delete every key under this cache's prefix; returns how many."""
        keys = [self._k(k) for k in await self.keys()]
        for i in range(0, len(keys), 500):
            await self.client.delete(*keys[i : i + 500])
        return len(keys)

    # -- pub/sub ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Ping Redis and subscribe to the registered channels, waiting for Redis to confirm,
        so that a message published once start() returns reaches this process. If Redis does
        not answer, the process still starts (limits fail open) and keeps trying."""
        await super().start()
        try:
            await self.client.ping()
            if self._handlers:
                await self._subscribe()
        except Exception as exc:
            log.error("Redis is unreachable; cache and rate limits degrade until it answers",
                      extra={"fields": {"error": str(exc)[:300]}})
            self._pubsub = None
        if self._handlers and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="nexus-cache-pubsub")

    async def _subscribe(self) -> None:
        pubsub = self.client.pubsub()
        channels = [self._k(c) for c in self._handlers]
        await pubsub.subscribe(*channels)
        pending = set(channels)
        deadline = time.monotonic() + 5
        while pending and time.monotonic() < deadline:
            msg = await pubsub.get_message(timeout=1.0)
            if msg and msg["type"] == "subscribe":
                ch = msg["channel"]
                pending.discard(ch.decode() if isinstance(ch, bytes) else ch)
        if pending:
            await pubsub.aclose()
            raise ConnectionError("Redis did not confirm the subscription")
        self._pubsub = pubsub

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                    delay = 0.5
                    # Messages sent while we were away are lost: tell every subscriber.
                    for channel in self._handlers:
                        self._deliver(channel, None)
                msg = await self._pubsub.get_message(timeout=1.0)
                if msg is None or msg["type"] != "message":
                    continue
                channel = msg["channel"].decode()[len(self.prefix):]
                data = msg["data"]
                self._deliver(channel, data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Redis subscription interrupted; reconnecting",
                            extra={"fields": {"error": str(exc)[:300]}})
                if self._pubsub is not None:
                    with contextlib.suppress(Exception):
                        await self._pubsub.aclose()
                    self._pubsub = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def close(self) -> None:
        await super().close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        with contextlib.suppress(Exception):
            await self.client.aclose()


def create_cache(settings: Settings) -> Cache:
    if settings.redis_url:
        return RedisCache(settings.redis_url, settings.redis_prefix)
    return InProcessCache()


def cache_of(nx: Nexus) -> Cache:
    """The process's shared cache (`nx.cache`), made on first use."""
    cache: Cache | None = getattr(nx, "cache", None)
    if cache is None:
        cache = install(nx)
    return cache


def install(nx: Nexus) -> Cache:
    """Make `nx.cache`, start and stop it with the process, and with Redis carry principal
    cache invalidation to every process. Idempotent (rate limits and metrics both call it)."""
    existing: Cache | None = getattr(nx, "cache", None)
    if existing is not None:
        return existing
    cache = create_cache(nx.settings)
    nx.cache = cache  # type: ignore[attr-defined]
    if isinstance(cache, RedisCache):
        me = secrets.token_hex(8)
        auth = nx.auth

        def on_message(sender: str | None) -> None:
            if sender != me:
                auth.cache.clear()

        cache.subscribe(PRINCIPAL_CHANNEL, on_message)
        auth.on_invalidate.append(lambda: cache.publish_soon(PRINCIPAL_CHANNEL, me))
    nx.on("startup", cache.start)
    nx.on("shutdown", cache.close)
    return cache
