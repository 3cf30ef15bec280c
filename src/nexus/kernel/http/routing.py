"""Routes: exact paths by dictionary, parameterised paths by compiled pattern, and the
generic resource paths /api/v1/{app}/{resource}[/{id}[/{action}]] by table lookup."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]
_PARAM = re.compile(r"{(\w+)}")


@dataclass
class RouteDef:
    method: str
    path: str
    endpoint: Endpoint
    summary: str = ""
    tags: tuple[str, ...] = ()
    public: bool = False  # no authentication
    request_schema: Any = None  # pydantic model or JSON-schema dict, for OpenAPI
    request_media: str = "application/json"
    response_schema: Any = None
    status: int = 200
    pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if "{" in self.path:
            regex = "^" + _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(self.path).replace(r"\{", "{").replace(r"\}", "}")) + "$"
            self.pattern = re.compile(regex)


def route(method: str, path: str, **kw: Any) -> Callable[[Endpoint], RouteDef]:
    def deco(fn: Endpoint) -> RouteDef:
        return RouteDef(method, path, fn, summary=kw.pop("summary", (fn.__doc__ or "").strip().split("\n")[0]), **kw)

    return deco


class Router:
    def __init__(self) -> None:
        self.exact: dict[str, dict[str, RouteDef]] = {}
        self.patterns: list[RouteDef] = []
        self.all: list[RouteDef] = []

    def add(self, r: RouteDef) -> None:
        self.all.append(r)
        if r.pattern is None:
            self.exact.setdefault(r.path, {})[r.method] = r
        else:
            self.patterns.append(r)

    def match(self, method: str, path: str) -> tuple[RouteDef | None, dict[str, str], list[str]]:
        """(route, path params, allowed methods when the path exists with another method)."""
        by_method = self.exact.get(path)
        if by_method is not None:
            r = by_method.get(method) or (by_method.get("GET") if method == "HEAD" else None)
            if r is not None:
                return r, {}, []
            return None, {}, sorted(by_method)
        allowed: list[str] = []
        for r in self.patterns:
            assert r.pattern is not None
            m = r.pattern.match(path)
            if m is None:
                continue
            if r.method == method or (method == "HEAD" and r.method == "GET"):
                return r, m.groupdict(), []
            allowed.append(r.method)
        return None, {}, sorted(set(allowed))
