"""Rate limits (DESIGN.md §1): per caller and route class, in process or in Redis.

Every request that reaches a route falls into one class, each with its own budget
(NEXUS_RATE_LIMITS, `class=REQUESTS/SECONDS`):

| class  | requests                                                   | counted per      |
|--------|------------------------------------------------------------|------------------|
| `auth` | POST/PUT/PATCH/DELETE under /api/v1/auth/ (token, revoke…) | client address   |
| `bulk` | …/export and …/import                                      | caller           |
| `write`| other POST, PUT, PATCH, DELETE                             | caller           |
| `read` | GET, HEAD, OPTIONS                                         | caller           |

The caller is the API key when the request authenticates with one, else the signed-in user,
else (public routes, failed authentication) the client address. Health, readiness and
/metrics are never limited. An app can put a route into another class with
`limiter_of(nx).assign("POST", "/api/v1/x/{id}/send", "bulk")`.

The algorithm is a fixed window counter: one atomic increment per request (`Cache.incr`, a
Lua script in Redis) on a key named by class, caller and window. Each caller's windows are
offset by a hash of its key so that callers do not all reset at the same instant. Responses
carry the IETF draft headers `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`
(seconds) and `RateLimit-Policy` (`100;w=60`); a refused request gets 429 problem+json with
`Retry-After`. If the cache back end fails (Redis down) requests are let through (fail open)
and the failure is logged.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from nexus.kernel.cache import Cache, cache_of
from nexus.kernel.errors import Problem

if TYPE_CHECKING:
    from nexus.kernel.http.app import Nexus

log = logging.getLogger("nexus.ratelimit")

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_READ = frozenset({"GET", "HEAD", "OPTIONS"})
_BULK_TAILS = ("/export", "/import")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the window ends
    window: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
            (b"ratelimit-policy", f"{self.limit};w={self.window}".encode()),
        ]


class RateLimiter:
    def __init__(self, nx: Nexus, cache: Cache, limits: dict[str, tuple[int, int]]) -> None:
        self.nx = nx
        self.cache = cache
        self.limits = dict(limits)
        self.routes: dict[tuple[str, str], str] = {}
        self.rejections: dict[str, int] = dict.fromkeys(self.limits, 0)
        self._last_error_log = float("-inf")
        self.clock: Callable[[], float] = time.time  # wall clock: windows line up across processes

    # -- declaration -----------------------------------------------------------------------
    def assign(self, method: str, route: str, cls: str) -> None:
        """Put one route (its template, as declared) into a class."""
        if cls not in self.limits:
            raise ValueError(f"unknown rate-limit class {cls!r}; the classes are {', '.join(self.limits)}")
        self.routes[(method.upper(), route)] = cls

    def classify(self, method: str, path: str, route: str | None) -> str | None:
        if path in EXEMPT_PATHS:
            return None
        if route is not None:
            assigned = self.routes.get((method, route))
            if assigned is not None:
                return assigned
        if path.startswith("/api/v1/auth/") and method not in _READ:
            return "auth"
        if path.endswith(_BULK_TAILS):
            return "bulk"
        return "read" if method in _READ else "write"

    # -- per request -----------------------------------------------------------------------
    async def before_request(self, req: Request, public: bool) -> None:
        scope = req.scope
        method: str = scope["method"]
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        cls = self.classify(method, path, scope.get("nexus.route"))
        if cls is None or self.limits[cls][0] <= 0:
            return
        client = scope.get("client")
        address = "addr:" + (client[0] if client else "unknown")
        if cls == "auth" or public:
            await self.check(scope, cls, address)
            return
        try:
            principal = await self.nx.principal(req)
        except Problem:
            # Failed authentication counts against the address; the request then fails as it
            # would have (the error is not re-computed: the hook re-raises it).
            await self.check(scope, cls, address)
            raise
        caller = f"key:{principal.api_key_id}" if principal.api_key_id else f"user:{principal.user_id}"
        await self.check(scope, cls, caller)

    async def check(self, scope: MutableMapping[str, Any], cls: str, caller: str) -> Decision | None:
        """Count the request; add the RateLimit-* headers to its response; 429 when over."""
        decision = await self.hit(cls, caller)
        if decision is None:
            return None
        scope.setdefault("nexus.response_headers", []).extend(decision.headers())
        if not decision.allowed:
            self.rejections[cls] = self.rejections.get(cls, 0) + 1
            retry = max(1, decision.reset)
            raise Problem(
                429,
                f"Too many requests: the limit for {cls} requests is {decision.limit} per "
                f"{decision.window} s. Retry in {retry} s.",
                type="rate-limited",
                headers={"Retry-After": str(retry)},
                extra={"limit_class": cls},
            )
        return decision

    async def hit(self, cls: str, caller: str) -> Decision | None:
        """Count one request of `caller` in `cls`; None when the class is unlimited or the
        cache failed (fail open)."""
        limit, window = self.limits[cls]
        if limit <= 0:
            return None
        now = self.clock()
        offset = zlib.crc32(caller.encode()) % window
        index = int((now + offset) // window)
        reset = math.ceil((index + 1) * window - offset - now)
        try:
            count = await self.cache.incr(f"rl:{cls}:{caller}:{index}", 1, ttl=window + 1)
        except Exception as exc:
            if time.monotonic() - self._last_error_log > 30:
                self._last_error_log = time.monotonic()
                log.error("rate limits are not enforced: the cache failed",
                          extra={"fields": {"backend": self.cache.backend, "error": str(exc)[:300]}})
            return None
        return Decision(count <= limit, limit, max(0, limit - count), max(0, reset), window)


def limiter_of(nx: Nexus) -> RateLimiter:
    return nx.state["ratelimit"]  # type: ignore[no-any-return]


def install(nx: Nexus) -> None:
    limiter = RateLimiter(nx, cache_of(nx), nx.settings.rate_limits)
    nx.state["ratelimit"] = limiter
    nx.on("before_request", limiter.before_request)
