"""In-app notifications: apps raise them with `uow.notify(...)`; people read them at
/api/v1/notifications and receive them live on the WebSocket ("notifications" topic).
Preferences per type decide whether a type is shown (email delivery arrives with Mail)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.errors import Problem, bad_request, not_found
from nexus.kernel.events import EventType
from nexus.kernel.http.crud import query_params
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.ids import is_id
from nexus.kernel.jsonutil import dumps, utcnow
from nexus.kernel.models import Notification
from nexus.kernel.records import TableSpec
from nexus.kernel.schema_base import Schema

if TYPE_CHECKING:
    from nexus.kernel.http.app import Nexus

NOTIFICATION = TableSpec(Notification)
EVENT = "nexus.notifications.notification.created"


class PreferenceIn(Schema):
    in_app: bool
    email: bool = False


def _nx(req: Request) -> Nexus:
    return req.scope["nexus"]  # type: ignore[no-any-return]


async def list_notifications(req: Request) -> Response:
    """The caller's notifications, newest first; `?unread=true` for unread only."""
    nx = _nx(req)
    p = await nx.principal(req)
    params = query_params(req)
    unknown = set(params) - {"unread", "limit", "cursor"}
    if unknown:
        raise bad_request(f"Unknown parameter {sorted(unknown)[0]!r}.")
    try:
        limit = int((params.get("limit") or ["50"])[0])
    except ValueError:
        raise bad_request("limit is an integer from 1 to 200.") from None
    if not 1 <= limit <= 200:
        raise bad_request("limit is an integer from 1 to 200.")
    sql = f"SELECT {NOTIFICATION.select_list} FROM kernel_notification WHERE org_id = ? AND user_id = ?"
    args: list[Any] = [p.org_id, p.user_id]
    if (params.get("unread") or ["false"])[0].lower() in ("1", "true", "yes"):
        sql += " AND read_at IS NULL"
    cursor = params["cursor"][0] if params.get("cursor") else None
    if cursor:
        if not is_id(cursor):
            raise bad_request("The cursor is invalid.", pointer="/query/cursor")
        sql += " AND id < ?"
        args.append(cursor)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit + 1)
    async with nx.db.reader() as conn:
        rows = await conn.fetch(sql, args)
        unread = await conn.fetchval(
            "SELECT count(*) FROM kernel_notification WHERE org_id = ? AND user_id = ? AND read_at IS NULL",
            [p.org_id, p.user_id])
    items = [NOTIFICATION.to_output(nx.db.dialect, r) for r in rows[:limit]]
    nxt = items[-1]["id"] if len(rows) > limit else None
    return Response(dumps({"items": items, "next_cursor": nxt, "unread_count": int(unread)}),
                    media_type="application/json")


async def mark_read(req: Request) -> Response:
    """Mark one notification read."""
    nx = _nx(req)
    p = await nx.principal(req)
    nid = req.scope["path_params"]["id"]
    if not is_id(nid):
        raise not_found("notification")
    async with nx.db.transaction() as conn:
        n = await conn.execute(
            "UPDATE kernel_notification SET read_at = coalesce(read_at, ?) WHERE org_id = ? AND user_id = ? AND id = ?",
            [nx.db.ts(utcnow()), p.org_id, p.user_id, nid])
    if n != 1:
        raise not_found("notification")
    return Response(status_code=204)


async def mark_all_read(req: Request) -> Response:
    """Mark every notification of the caller read."""
    nx = _nx(req)
    p = await nx.principal(req)
    async with nx.db.transaction() as conn:
        n = await conn.execute(
            "UPDATE kernel_notification SET read_at = ? WHERE org_id = ? AND user_id = ? AND read_at IS NULL",
            [nx.db.ts(utcnow()), p.org_id, p.user_id])
    return json_response({"marked": n})


async def get_preferences(req: Request) -> Response:
    """Every notification type with the caller's choice (default: shown in the app)."""
    nx = _nx(req)
    p = await nx.principal(req)
    async with nx.db.reader() as conn:
        rows = await conn.fetch("SELECT type, in_app, email FROM kernel_notification_pref WHERE org_id = ? AND user_id = ?",
                                [p.org_id, p.user_id])
    chosen = {r[0]: (bool(r[1]), bool(r[2])) for r in rows}
    types = nx.state.setdefault("notification_types", {})
    return json_response({"items": [
        {"type": t, "description": d, "in_app": chosen.get(t, (True, False))[0], "email": chosen.get(t, (True, False))[1]}
        for t, d in sorted(types.items())]})


async def set_preference(req: Request) -> Response:
    """Choose whether a notification type is shown."""
    from nexus.kernel.http.app import parse_json_body

    nx = _nx(req)
    p = await nx.principal(req)
    ntype = req.scope["path_params"]["type"]
    if ntype not in nx.state.setdefault("notification_types", {}):
        raise Problem(404, f"No notification type {ntype[:100]!r}.")
    body = await parse_json_body(req, PreferenceIn)
    assert isinstance(body, PreferenceIn)
    async with nx.db.transaction() as conn:
        n = await conn.execute(
            "UPDATE kernel_notification_pref SET in_app = ?, email = ? WHERE org_id = ? AND user_id = ? AND type = ?",
            [body.in_app, body.email, p.org_id, p.user_id, ntype])
        if n == 0:
            await conn.execute(
                "INSERT INTO kernel_notification_pref (org_id, user_id, type, in_app, email) VALUES (?,?,?,?,?)",
                [p.org_id, p.user_id, ntype, body.in_app, body.email])
    return json_response({"type": ntype, "in_app": body.in_app, "email": body.email})


def register_type(nx: Nexus, ntype: str, description: str) -> None:
    """Apps call this at setup so people can find and switch off each kind of notification."""
    nx.state.setdefault("notification_types", {})[ntype] = description


def install(nx: Nexus) -> None:
    nx.events.register_type(EventType(EVENT, "1", "A notification for one user (visible to that user only).", {
        "type": "object", "required": ["user_id", "notification"],
        "properties": {"user_id": {"type": "string"}, "notification": {"type": "object"}}}, None))
    for rd in ROUTES:
        nx.router.add(rd)


ROUTES = [
    RouteDef("GET", "/api/v1/notifications", list_notifications, tags=("notifications",), summary="My notifications"),
    RouteDef("POST", "/api/v1/notifications/read-all", mark_all_read, tags=("notifications",), summary="Mark all read"),
    RouteDef("POST", "/api/v1/notifications/{id}/read", mark_read, tags=("notifications",), summary="Mark read",
             status=204),
    RouteDef("GET", "/api/v1/notifications/preferences", get_preferences, tags=("notifications",),
             summary="My notification preferences"),
    RouteDef("PUT", "/api/v1/notifications/preferences/{type}", set_preference, tags=("notifications",),
             summary="Set a notification preference", request_schema=PreferenceIn),
]
