"""Event routes: the type catalog, the org's event stream for integrators, and the
WebSocket `/api/v1/ws` that pushes the same stream (and later notifications) live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from nexus.kernel.context import Principal
from nexus.kernel.errors import Problem, bad_request
from nexus.kernel.events import to_cloudevent
from nexus.kernel.http.crud import query_params
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.jsonutil import dumps, loads
from nexus.kernel.permissions import has_permission

if TYPE_CHECKING:
    from nexus.kernel.http.app import Nexus

log = logging.getLogger("nexus.ws")


NOTIFICATION_EVENT = "nexus.notifications.notification.created"


def can_see_event(nx: Nexus, p: Principal, event: dict[str, Any]) -> bool:
    """Record events follow the resource's read permission; a notification only its recipient."""
    if event["type"] == NOTIFICATION_EVENT:
        data = event.get("data") or {}
        return isinstance(data, dict) and data.get("user_id") == p.user_id
    return can_see(nx, p, event["type"])


def can_see(nx: Nexus, p: Principal, event_type: str) -> bool:
    et = nx.events.types.get(event_type)
    if et is None or et.resource is None:
        return has_permission(p, "events.stream.read")
    return has_permission(p, et.resource + ".read")


async def event_types(req: Request) -> Response:
    """Every event type with its version and JSON Schema."""
    nx: Nexus = req.scope["nexus"]
    return json_response({"items": [
        {"type": t.type, "version": t.version, "description": t.description, "resource": t.resource,
         "schema": t.schema} for t in sorted(nx.events.types.values(), key=lambda t: t.type)]})


async def list_events(req: Request) -> Response:
    """The org's events after a position, oldest first, filtered to what the caller may read."""
    nx: Nexus = req.scope["nexus"]
    p = await nx.principal(req)
    params = query_params(req)
    unknown = set(params) - {"after", "limit", "type"}
    if unknown:
        raise bad_request(f"Unknown parameter {sorted(unknown)[0]!r}; use after, limit, type.")
    try:
        after = int((params.get("after") or ["0"])[0])
        limit = int((params.get("limit") or ["100"])[0])
    except ValueError:
        raise bad_request("after and limit are integers.") from None
    if not 1 <= limit <= 1000 or after < 0:
        raise bad_request("limit is 1 to 1000 and after is a position (≥ 0).")
    types = params.get("type")
    sql = ("SELECT id, org_id, type, source, subject, time, data, actor_id, position FROM kernel_outbox"
           " WHERE org_id = ? AND position > ?")
    args: list[Any] = [p.org_id, after]
    if types:
        wanted = [t for v in types for t in v.split(",") if t]
        if len(wanted) > 50:
            raise bad_request("At most 50 types.")
        sql += f" AND type IN ({','.join('?' * len(wanted))})"
        args += wanted
    sql += " ORDER BY position LIMIT ?"
    args.append(limit)
    async with nx.db.reader() as conn:
        rows = await conn.fetch(sql, args)
    cols = ("id", "org_id", "type", "source", "subject", "time", "data", "actor_id", "position")
    events = [to_cloudevent(dict(zip(cols, r, strict=True))) for r in rows]
    last = events[-1]["nexusposition"] if events else after
    visible = [e for e in events if can_see_event(nx, p, e)]
    return Response(dumps({"items": visible, "next_after": last}), media_type="application/json")


@dataclass(eq=False)
class Client:
    ws: WebSocket
    principal: Principal
    topics: set[str] = field(default_factory=set)


class Hub:
    """The WebSocket connections of this process, by org."""

    def __init__(self, nx: Nexus) -> None:
        self.nx = nx
        self.clients: dict[str, set[Client]] = {}

    async def broadcast_events(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            conns = self.clients.get(e["nexusorgid"])
            if not conns:
                continue
            is_notification = e["type"] == NOTIFICATION_EVENT
            for c in list(conns):
                if not can_see_event(self.nx, c.principal, e):
                    continue
                if is_notification and "notifications" in c.topics:
                    with contextlib.suppress(Exception):
                        await c.ws.send_text(dumps({"type": "notification",
                                                    "notification": e["data"]["notification"]}).decode())
                elif "events" in c.topics:
                    with contextlib.suppress(Exception):
                        await c.ws.send_text(dumps({"type": "event", "event": e}).decode())

    async def send_to_user(self, org_id: str, user_id: str, message: dict[str, Any]) -> None:
        for c in list(self.clients.get(org_id, ())):
            if c.principal.user_id == user_id and "notifications" in c.topics:
                with contextlib.suppress(Exception):
                    await c.ws.send_text(dumps(message).decode())


async def websocket(ws: WebSocket, nx: Nexus) -> None:
    """Authenticate by the session cookie, `?token=`, or a first `{"type": "auth", "token": …}`."""
    await ws.accept()
    token = ws.query_params.get("token") or ws.cookies.get("nexus_access")
    try:
        if not token:
            first = await asyncio.wait_for(ws.receive_text(), 10)
            msg = loads(first)
            if not isinstance(msg, dict) or msg.get("type") != "auth" or not isinstance(msg.get("token"), str):
                raise Problem(401, "Send {\"type\": \"auth\", \"token\": …} first.")
            token = msg["token"]
        p = await nx.auth.authenticate(nx.db, "Bearer " + token)
    except (TimeoutError, Problem, ValueError, WebSocketDisconnect):
        with contextlib.suppress(Exception):
            await ws.send_text(dumps({"type": "error", "status": 401, "detail": "not authenticated"}).decode())
            await ws.close(code=4401)
        return
    entry = Client(ws, p)
    topics = entry.topics
    nx.hub.clients.setdefault(p.org_id, set()).add(entry)
    await ws.send_text(dumps({"type": "ready", "user_id": p.user_id, "org_id": p.org_id}).decode())
    try:
        while True:
            raw = await ws.receive_text()
            if len(raw) > 10_000:
                await ws.send_text(dumps({"type": "error", "status": 413, "detail": "message too large"}).decode())
                continue
            try:
                msg = loads(raw)
            except ValueError:
                await ws.send_text(dumps({"type": "error", "status": 400, "detail": "not JSON"}).decode())
                continue
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "subscribe" and isinstance(msg.get("topics"), list):
                allowed = {t for t in msg["topics"] if t in ("events", "notifications")}
                topics |= allowed
                await ws.send_text(dumps({"type": "subscribed", "topics": sorted(topics)}).decode())
            elif kind == "unsubscribe" and isinstance(msg.get("topics"), list):
                topics -= set(msg["topics"])
                await ws.send_text(dumps({"type": "subscribed", "topics": sorted(topics)}).decode())
            elif kind == "ping":
                await ws.send_text('{"type":"pong"}')
            else:
                await ws.send_text(dumps({"type": "error", "status": 400, "detail": "unknown message"}).decode())
    except WebSocketDisconnect:
        pass
    finally:
        nx.hub.clients.get(p.org_id, set()).discard(entry)


ROUTES = [
    RouteDef("GET", "/api/v1/events/types", event_types, tags=("events",), summary="Event types and their schemas"),
    RouteDef("GET", "/api/v1/events", list_events, tags=("events",), summary="The org's event stream (poll)"),
]
