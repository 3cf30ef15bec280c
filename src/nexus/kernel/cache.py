"""In-process TTL cache. Redis takes over when NEXUS_REDIS_URL is set (platform issue)."""

from __future__ import annotations

import time
from typing import Any


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
