"""The NEXUS ASGI application and its runtime (settings, database, auth, apps).

Request pipeline: request id → body-size guard → route → authenticate → permission →
handler → problem+json for any error (never a stack trace) → access log.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import itertools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel import migrate
from nexus.kernel.apps import LoadedApp, load_app, resolve
from nexus.kernel.auth import Authenticator
from nexus.kernel.config import Settings
from nexus.kernel.context import Context, Principal, request_id_var
from nexus.kernel.crypto import SecretBox
from nexus.kernel.db import Database, create_database, is_unique_violation
from nexus.kernel.errors import Problem, unauthenticated
from nexus.kernel.events import EventBus, EventType, record_event_schema
from nexus.kernel.http.responses import problem_response
from nexus.kernel.http.routing import RouteDef, Router
from nexus.kernel.permissions import PRIVILEGED_APPS, PRIVILEGED_PERMISSIONS
from nexus.kernel.query import CursorCodec
from nexus.kernel.records import TableSpec
from nexus.kernel.resources import Resource, pydantic_errors

log = logging.getLogger("nexus.http")
_RID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_NONE: list[Any] = []
_RID_PREFIX = secrets.token_hex(4)
_rid_counter = itertools.count(1)


def _next_request_id() -> str:
    """Unique per process start and cheap: no system call per request."""
    return f"{_RID_PREFIX}{next(_rid_counter):08x}"
_RESOURCE_TEMPLATES = {
    2: "/api/v1/{app}/{resource}",
    3: "/api/v1/{app}/{resource}/{id}",
    4: "/api/v1/{app}/{resource}/{id}/{action}",
}
KERNEL_SUBSYSTEMS = ("audit", "jobs", "blobs", "search", "ratelimit", "metrics", "webhooks", "notifications",
                     "customfields")


class BodyTooLarge(Exception):
    pass



class Nexus:
    """One process's NEXUS: the apps it serves and everything they share."""

    def __init__(self, settings: Settings, apps: list[str] | None = None, *, run_background: bool = True) -> None:
        self.settings = settings
        self.db: Database = create_database(settings)
        self.db.secret_box = SecretBox(settings.secret_key, "stored-responses")
        self.auth = Authenticator(settings.secret_key, settings.access_token_ttl)
        self.cursors = CursorCodec(settings.secret_key)
        self.run_background = run_background
        load_names, serve_names = resolve(apps)
        self.loaded: dict[str, LoadedApp] = {n: load_app(n) for n in load_names}
        for app in self.loaded.values():
            if app.manifest.privileged:
                PRIVILEGED_APPS.add(app.name)
            PRIVILEGED_PERMISSIONS.update(app.manifest.privileged_permissions)
            PRIVILEGED_PERMISSIONS.update(r.permission(v) for r in app.resources for v in r.privileged)
        self.served: list[str] = serve_names
        self.resources: dict[tuple[str, str], Resource] = {}
        self.all_resources: dict[str, Resource] = {}
        for app in self.loaded.values():
            for r in app.resources:
                self.all_resources[r.key] = r
                r.service_instance.references_resolver = self.table_for
                if app.name in self.served:
                    self.resources[(r.app, r.name)] = r
        self.router = Router()
        # Kernel subsystems and apps plug in here: "startup", "background" (only where
        # background work runs), "shutdown", "fallback"; "before_request" (async
        # fn(request, public) that may raise a Problem, e.g. rate limits) and
        # "after_response" (fn(scope, status, seconds), e.g. metrics).
        self.hooks: dict[str, list[Callable[..., Any]]] = {}
        self.state: dict[str, Any] = {}
        self._heads: set[str] | None = None
        self._started = False
        from nexus.kernel.http import audit, crud, meta, static, system
        from nexus.kernel.http import events as event_routes

        for r in (*system.ROUTES, *meta.ROUTES, *crud.ROUTES, *audit.ROUTES, *event_routes.ROUTES):
            self.router.add(r)
        self.events = EventBus(self.db, settings.nats_url, settings.nats_stream)
        self.db.commit_listeners.append(self.events.wake)
        self.hub = event_routes.Hub(self)
        self.events.on_dispatched(self.hub.broadcast_events)
        self._ws = event_routes.websocket
        for r in self.all_resources.values():
            for verb in ("created", "updated", "deleted", "restored", *(a.verb for a in r.actions)):
                self.events.register_type(EventType(
                    r.event_type(verb), "1", f"A {r.entity.replace('_', ' ')} was {verb.replace('_', ' ')}.",
                    record_event_schema(r.event_type(verb)), r.key))
        self.on("fallback", static.serve_web)
        for name in self.served:
            for rd in self.loaded[name].routes:
                self.router.add(rd)
        for sub in KERNEL_SUBSYSTEMS:
            # Optional kernel subsystems: each module offers install(nexus) to add its
            # routes and hooks. Missing modules are simply not part of this build.
            try:
                module = importlib.import_module(f"nexus.kernel.{sub}")
            except ModuleNotFoundError as exc:
                if exc.name != f"nexus.kernel.{sub}":
                    raise
                continue
            module.install(self)
        self.crud = crud

    # -- lookups -------------------------------------------------------------
    def table_for(self, key: str) -> TableSpec | None:
        r = self.all_resources.get(key)
        return r.spec if r else None

    def on(self, hook: str, fn: Callable[..., Any]) -> None:
        self.hooks.setdefault(hook, []).append(fn)

    @property
    def _before(self) -> list[Callable[..., Any]]:
        return self.hooks.get("before_request", _NONE)

    # -- lifecycle -----------------------------------------------------------
    async def startup(self) -> None:
        if self._started:
            return
        await self.db.open()
        self._heads = migrate.heads(self.settings)
        for app in self.loaded.values():
            if app.setup is not None:
                res = app.setup(self)
                if res is not None:
                    await res
        for app in self.loaded.values():
            if app.startup is not None:
                await app.startup(self)
        for fn in self.hooks.get("startup", []):
            await fn()
        if self.run_background:
            await self.events.start()
            for fn in self.hooks.get("background", []):
                await fn()
        self._started = True
        # Everything loaded so far lives as long as the process: move it out of the cyclic
        # collector's sight, and collect the young generation less often. Measured: full
        # collections of the start-up heap caused 150 ms pauses under load (docs/performance.md).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)

    async def shutdown(self, grace: float = 20.0) -> None:
        """Stop every subsystem, each within `grace` seconds.

        A subsystem whose stop never returns (a job that swallows its cancellation, a peer that
        never answers) must not keep the process — or the next test session — from ending:
        it is cancelled and left behind, and the database is closed regardless; anything it
        had not committed is rolled back, never half-written.
        """
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            (getattr(fn, "__qualname__", repr(fn)), fn) for fn in self.hooks.get("shutdown", [])]
        if self.run_background:
            steps.append(("events.stop", self.events.stop))
        for name, fn in steps:
            task = asyncio.ensure_future(fn())
            done, _ = await asyncio.wait({task}, timeout=grace)
            if not done:
                task.cancel()  # not awaited: a task that ignores cancellation would hang us again
                log.warning("shutdown: %s did not stop within %.0f s; cancelled", name, grace)
            elif task.exception() is not None:
                log.warning("shutdown: %s failed: %r", name, task.exception())
        await self.db.close()
        self._started = False

    async def migrations_current(self) -> bool:
        if self._heads is None:
            self._heads = migrate.heads(self.settings)
        async with self.db.reader() as conn:
            try:
                rows = await conn.fetch("SELECT version_num FROM alembic_version")
            except Exception:
                return False
        return {r[0] for r in rows} == self._heads

    # -- per request helpers -------------------------------------------------
    async def principal(self, req: Request) -> Principal:
        p = req.scope.get("nexus.principal")
        if p is None:
            headers = req.headers
            authorization = headers.get("authorization")
            api_key = headers.get("x-api-key")
            if authorization is None and api_key is None:
                cookie = req.cookies.get(SESSION_COOKIE)
                if cookie:
                    check_csrf(req)
                    authorization = "Bearer " + cookie
            p = await self.auth.authenticate(self.db, authorization, api_key)
            req.scope["nexus.principal"] = p
        return p  # type: ignore[no-any-return]

    async def context(self, req: Request) -> Context:
        p = await self.principal(req)
        return Context(p, req.scope.get("nexus.request_id"), client_addr(req))

    # -- ASGI ----------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            if scope["path"] == "/api/v1/ws":
                from starlette.websockets import WebSocket

                await self._ws(WebSocket(scope, receive, send), self)  # type: ignore[arg-type]
            else:
                await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        rid = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                cand = v.decode("latin-1")
                if _RID.match(cand):
                    rid = cand
                break
        if rid is None:
            rid = _next_request_id()
        token = request_id_var.set(rid)
        scope["nexus.request_id"] = rid
        scope["nexus"] = self
        path = scope["path"]
        status_holder = [500]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message.setdefault("headers", [])
                # Headers hooks add to every response (rate limits: RateLimit-*), as
                # scope["nexus.response_headers"]: a list of (lower-case bytes, bytes).
                extra = scope.get("nexus.response_headers") or _NONE
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode()), *extra]
            await send(message)

        try:
            request = Request(scope, receive)
            try:
                response = await self.dispatch(request)
            except Problem as p:
                response = problem_response(p, instance=path, request_id=rid)
            except ValidationError as exc:
                response = problem_response(pydantic_errors(exc), instance=path, request_id=rid)
            except Exception as exc:
                if is_unique_violation(exc):
                    # A uniqueness rule the database enforced between two concurrent writers:
                    # nothing was committed, and a retry will see the other writer's record.
                    log.info("unique violation", extra={"fields": {"path": path, "error": str(exc)[:300]}})
                    problem = Problem(409, "This conflicts with a record that was just created; retry the request.")
                else:
                    log.exception("unhandled error", extra={"fields": {"path": path, "method": scope["method"]}})
                    problem = Problem(500, "Something went wrong on our side; the request id identifies it in the logs.")
                response = problem_response(problem, instance=path, request_id=rid)
            await response(scope, receive, send_wrapper)  # type: ignore[arg-type]
        finally:
            for after in self.hooks.get("after_response", _NONE):
                after(scope, status_holder[0], time.perf_counter() - started)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={"fields": {"method": scope["method"], "path": path, "status": status_holder[0],
                                      "ms": round((time.perf_counter() - started) * 1000, 2)}},
                )
            request_id_var.reset(token)

    async def dispatch(self, req: Request) -> Response:
        method = req.scope["method"]
        path: str = req.scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        route, params, allowed = self.router.match(method, path)
        before = self._before
        if route is not None:
            req.scope["path_params"] = params
            req.scope["nexus.route"] = route.path
            for fn in before:
                await fn(req, route.public)
            if not route.public:
                await self.principal(req)
            return await route.endpoint(req)
        if path.startswith("/api/v1/"):
            parts = path[8:].split("/")
            if len(parts) >= 2:
                resource = self.resources.get((parts[0], parts[1]))
                if resource is not None:
                    req.scope["nexus.route"] = _RESOURCE_TEMPLATES[min(len(parts), 4)]
                    for fn in before:
                        await fn(req, False)
                    return await self.crud.dispatch_resource(self, req, resource, parts[2:], method)
        if allowed:
            raise Problem(405, f"{method} is not allowed here.", headers={"Allow": ", ".join(allowed)})
        fallback = self.hooks.get("fallback")
        if fallback and not path.startswith("/api/") and path not in ("/healthz", "/readyz", "/metrics"):
            return await fallback[-1](req)  # type: ignore[no-any-return]
        raise Problem(404, f"No such endpoint: {path}")


# -- helpers for route handlers -------------------------------------------------

SESSION_COOKIE = "nexus_access"
REFRESH_COOKIE = "nexus_refresh"
CSRF_COOKIE = "nexus_csrf"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def check_csrf(req: Request) -> None:
    """Cookie-authenticated writes must echo the CSRF cookie in a header (double submit):
    another site can make the browser send our cookies, but cannot read them."""
    if req.scope["method"] in _SAFE:
        return
    expected = req.cookies.get(CSRF_COOKIE)
    got = req.headers.get("x-csrf-token")
    if not expected or not got or not secrets.compare_digest(expected, got):
        raise Problem(403, "The CSRF token is missing or wrong; reload the page.", type="csrf")


def client_addr(req: Request) -> str | None:
    """The caller's address as the server saw it (for audit, lockout and rate limits)."""
    client = req.scope.get("client")
    return client[0] if client else None


def nexus_of(req: Request) -> Nexus:
    return req.scope["nexus"]  # type: ignore[no-any-return]


async def read_body(req: Request, limit: int | None = None) -> bytes:
    nx = nexus_of(req)
    limit = limit or nx.settings.max_body_bytes
    declared = req.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise Problem(413, f"The body is larger than the limit of {limit} bytes.")
        except ValueError:
            raise Problem(400, "Content-Length is not a number.") from None
    chunks = []
    size = 0
    async for chunk in req.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"The body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def require_json(req: Request) -> None:
    ctype = req.headers.get("content-type", "")
    media = ctype.split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise Problem(415, "Send the body as application/json.", headers={"Accept": "application/json"})


async def parse_json_body(req: Request, model: type[BaseModel]) -> BaseModel:
    require_json(req)
    body = await read_body(req)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise pydantic_errors(exc) from None


async def optional_principal(req: Request) -> Principal | None:
    try:
        return await nexus_of(req).principal(req)
    except Problem:
        return None


def require_principal(p: Principal | None) -> Principal:
    if p is None:
        raise unauthenticated()
    return p


__all__ = ["BodyTooLarge", "Nexus", "RouteDef", "nexus_of", "parse_json_body", "read_body", "require_json"]
