"""Webhooks (DESIGN.md §5): per-org subscriptions by event type, signed per the Standard
Webhooks spec, retried with exponential back-off and jitter, with a delivery log, manual
redelivery, and automatic disabling (and a notification to the owner) after persistent failure.

Outbound requests pass an SSRF guard: the target host is resolved once, every address is
checked (no loopback, private, link-local, multicast or reserved ranges unless an admin
allow-list names the host or range), and the connection goes to the address that was
checked — a DNS answer that changes between check and connect (rebinding) cannot redirect
it. Redirects are not followed; timeouts and a response size cap keep a bad receiver from
holding a sender.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fnmatch
import hashlib
import hmac
import ipaddress
import logging
import os
import random
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.config import ConfigError
from nexus.kernel.crypto import SecretBox
from nexus.kernel.errors import bad_request, not_found, validation
from nexus.kernel.events import EventType, record_event_schema, to_cloudevent
from nexus.kernel.http.crud import query_params
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.ids import is_id, new_id
from nexus.kernel.jsonutil import dumps, utcnow
from nexus.kernel.models import Webhook, WebhookDelivery
from nexus.kernel.permissions import PRIVILEGED_APPS, require
from nexus.kernel.records import TableSpec, UnitOfWork
from nexus.kernel.resources import Action, RecordService, Resource
from nexus.kernel.schema_base import Schema

if TYPE_CHECKING:
    from nexus.kernel.http.app import Nexus

log = logging.getLogger("nexus.webhooks")
DELIVERY = TableSpec(WebhookDelivery)
HOOK = TableSpec(Webhook)
USER_AGENT = "NEXUS-Webhooks/1"


# -- configuration -----------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookConfig:
    max_attempts: int = 8
    retry_base: float = 10.0  # seconds; attempt n waits base * 4**(n-1), ±20 % jitter, capped at 6 h
    disable_after: int = 20  # consecutive failed attempts
    timeout: float = 10.0
    max_response: int = 65_536
    allow: tuple[str, ...] = ()  # hosts or CIDR ranges exempt from the SSRF guard

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> WebhookConfig:
        env = dict(os.environ if env is None else env)

        def num(name: str, default: float, lo: float, hi: float) -> float:
            raw = env.get(name)
            if not raw:
                return default
            try:
                v = float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None
            if not lo <= v <= hi:
                raise ConfigError(f"{name} must be between {lo} and {hi}, got {raw}")
            return v

        allow = tuple(a.strip() for a in (env.get("NEXUS_WEBHOOK_ALLOW") or "").split(",") if a.strip())
        for a in allow:
            if "/" in a:
                try:
                    ipaddress.ip_network(a, strict=False)
                except ValueError:
                    raise ConfigError(f"NEXUS_WEBHOOK_ALLOW: {a!r} is not a host or CIDR range") from None
        return cls(
            max_attempts=int(num("NEXUS_WEBHOOK_MAX_ATTEMPTS", 8, 1, 50)),
            retry_base=num("NEXUS_WEBHOOK_RETRY_BASE", 10.0, 0.01, 3600),
            disable_after=int(num("NEXUS_WEBHOOK_DISABLE_AFTER", 20, 1, 10_000)),
            timeout=num("NEXUS_WEBHOOK_TIMEOUT", 10.0, 0.1, 120),
            allow=allow,
        )

    def backoff(self, attempt: int) -> float:
        delay = min(self.retry_base * 4 ** (attempt - 1), 6 * 3600)
        return delay * random.uniform(0.8, 1.2)


# -- SSRF guard --------------------------------------------------------------------------


class Blocked(Exception):
    """The target is not allowed (private address, bad URL)."""


def _forbidden_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT))


_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _allowed(cfg: WebhookConfig, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    for entry in cfg.allow:
        if "/" in entry:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        elif entry.lower() == host.lower() or entry == str(ip):
            return True
    return False


def check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path+query) of an acceptable webhook URL, or Blocked."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Blocked("the URL is malformed") from None
    if parts.scheme not in ("http", "https"):
        raise Blocked("only http and https URLs are allowed")
    if not parts.hostname:
        raise Blocked("the URL has no host")
    if parts.username or parts.password:
        raise Blocked("credentials in the URL are not allowed; use the signature to authenticate")
    port = port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, target


async def resolve_safely(cfg: WebhookConfig, host: str, port: int) -> str:
    """One address of `host` to connect to, after checking every address it resolves to."""
    try:
        literal = ipaddress.ip_address(host)
        addrs = [literal]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Blocked(f"{host} does not resolve ({exc.strerror})") from None
        addrs = [ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]) for i in infos]
    if not addrs:
        raise Blocked(f"{host} does not resolve")
    for ip in addrs:
        if _forbidden_address(ip) and not _allowed(cfg, host, ip):
            raise Blocked(f"{host} resolves to {ip}, a private or reserved address")
    return str(addrs[0])


# -- signing (Standard Webhooks) ---------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


# -- the subscriptions resource -------------------------------------------------------------

EventPattern = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[a-z0-9_.*-]+$")]


def _url(value: str) -> str:
    try:
        check_url(value)
    except Blocked as exc:
        raise ValueError(str(exc)) from None
    return value


class WebhookCreate(Schema):
    url: Annotated[str, StringConstraints(max_length=2000), AfterValidator(_url)]
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    event_types: list[EventPattern] = Field(min_length=1, max_length=50,
                                            description="Event types or patterns, e.g. nexus.tasks.task.* or nexus.*")
    enabled: bool = True


class WebhookUpdate(Schema):
    url: Annotated[str, StringConstraints(max_length=2000), AfterValidator(_url)] | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    event_types: list[EventPattern] | None = Field(default=None, min_length=1, max_length=50)
    enabled: bool | None = None


class WebhookService(RecordService):
    nexus: Nexus

    async def _check_target(self, url: str) -> None:
        cfg: WebhookConfig = self.nexus.state["webhooks.config"]
        _, host, port, _ = check_url(url)
        try:
            await resolve_safely(cfg, host, port)
        except Blocked as exc:
            raise validation([{"pointer": "/url", "detail": str(exc)}]) from None

    async def create(self, uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
        await self._check_target(values["url"])
        secret = new_secret()
        values = {**values, "secret_enc": self.nexus.state["webhooks.box"].seal(secret), "consecutive_failures": 0}
        record = await uow.insert(self.spec, values)
        self.record_change(uow, "created", None, record)
        return {**record, "secret": secret}  # shown once

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if changes.get("url"):
            await self._check_target(changes["url"])
        if changes.get("enabled") and not before["enabled"]:
            changes["consecutive_failures"] = 0
            changes["disabled_reason"] = None

    async def rotate_secret(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        secret = new_secret()
        after = await self.change(uow, record, {"secret_enc": self.nexus.state["webhooks.box"].seal(secret)},
                                  "secret_rotated")
        return {**after, "secret": secret}

    async def ping(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        """Queue a nexus.webhooks.subscription.pinged event for this webhook alone."""
        uow.emit("nexus.webhooks.subscription.pinged", record["id"], {"id": record["id"], "record": None,
                                                                        "previous": None, "webhook_id": record["id"]})
        return record


def subscriptions_resource() -> Resource:
    return Resource(
        app="webhooks", name="subscriptions", model=Webhook, create=WebhookCreate, update=WebhookUpdate,
        service=WebhookService, hidden=("secret_enc",), entity="subscription", importable=False,
        filters=("enabled", "url"), sorts=("created_at", "url"), search=("url", "description"),
        title_field="url",
        actions=(Action("rotate-secret", "rotate_secret", summary="Replace the signing secret (shown once)",
                        event="secret_rotated"),
                 Action("ping", "ping", summary="Send a test event to this webhook", event="pinged")),
        description="Webhook subscriptions: events of this org, signed and retried.",
    )


# -- queueing deliveries (an event subscriber) -------------------------------------------------


async def enqueue_deliveries(uow: UnitOfWork, event: dict[str, Any]) -> None:
    etype = event["type"]
    if etype.startswith("nexus.notifications."):
        return  # private to one person
    hooks = await uow.find(HOOK, {"enabled": True})
    now = uow.now
    for h in hooks:
        if etype == "nexus.webhooks.subscription.pinged":
            if (event.get("data") or {}).get("webhook_id") != h["id"]:
                continue
        elif etype.startswith("nexus.webhooks.") or not any(fnmatch.fnmatchcase(etype, p) for p in h["event_types"]):
            continue
        await uow.write(
            "INSERT INTO kernel_webhook_delivery (id, org_id, webhook_id, event_id, event_type, status, attempts,"
            " next_attempt_at, history, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [new_id(), uow.ctx.org_id, h["id"], event["id"], etype, "pending", 0, uow.db.ts(now), uow.db.json([]),
             uow.db.ts(now), uow.db.ts(now)])


# -- sending -----------------------------------------------------------------------------------


@dataclass
class Sender:
    nx: Nexus
    cfg: WebhookConfig
    box: SecretBox
    client: httpx.AsyncClient | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    failures: int = 0  # for /metrics

    async def start(self) -> None:
        self.client = httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(self.cfg.timeout),
                                        headers={"User-Agent": USER_AGENT}, trust_env=False)
        self.task = asyncio.create_task(self.loop(), name="nexus-webhook-sender")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.client is not None:
            await self.client.aclose()

    async def loop(self) -> None:
        while True:
            sent = 0
            try:
                if await self.nx.events.acquire_lease("webhook-sender"):
                    sent = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook sending failed")
            if not sent:
                self.wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 0.5)

    async def send_due(self, limit: int = 50) -> int:
        db = self.nx.db
        async with db.reader() as conn:
            rows = await conn.fetch(
                f"SELECT {DELIVERY.select_list} FROM kernel_webhook_delivery WHERE status = 'pending'"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?", [db.ts(utcnow()), limit])
        deliveries = [DELIVERY.to_dict(db.dialect, r) for r in rows]
        sem = asyncio.Semaphore(10)

        async def one(d: dict[str, Any]) -> None:
            async with sem:
                await self.attempt(d)

        await asyncio.gather(*(one(d) for d in deliveries))
        return len(deliveries)

    async def attempt(self, d: dict[str, Any]) -> None:
        db = self.nx.db
        async with db.reader() as conn:
            hook_row = await conn.fetchrow(f"SELECT {HOOK.select_list}, secret_enc FROM kernel_webhook WHERE id = ?",
                                           [d["webhook_id"]])
            ev_row = await conn.fetchrow(
                "SELECT id, org_id, type, source, subject, time, data, actor_id, position FROM kernel_outbox WHERE id = ?",
                [d["event_id"]])
        if hook_row is None or ev_row is None:
            await self._finish(d, None, "dead", None, "the webhook or the event no longer exists", None, 0)
            return
        hook = HOOK.to_dict(db.dialect, hook_row[:-1])
        if not hook["enabled"] or hook["deleted_at"] is not None:
            await self._finish(d, hook, "dead", None, "the webhook is disabled or deleted", None, 0)
            return
        event = to_cloudevent(dict(zip(("id", "org_id", "type", "source", "subject", "time", "data", "actor_id",
                                        "position"), ev_row, strict=True)))
        body = dumps(event)
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": d["id"],
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(self.box.open(hook_row[-1]), d["id"], ts, body),
        }
        started = time.perf_counter()
        status_code: int | None = None
        excerpt: str | None = None
        error: str | None = None
        try:
            scheme, host, port, target = check_url(hook["url"])
            ip = await resolve_safely(self.cfg, host, port)
            ip_host = f"[{ip}]" if ":" in ip else ip
            default_port = 443 if scheme == "https" else 80
            headers["Host"] = host if port == default_port else f"{host}:{port}"
            assert self.client is not None
            req = self.client.build_request("POST", f"{scheme}://{ip_host}:{port}{target}", content=body,
                                            headers=headers, timeout=httpx.Timeout(self.cfg.timeout),
                                            extensions={"sni_hostname": host} if scheme == "https" else {})
            resp = await self.client.send(req, stream=True)
            try:
                status_code = resp.status_code
                chunks, size = [], 0
                async for chunk in resp.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= self.cfg.max_response:
                        break
                excerpt = b"".join(chunks)[:2000].decode("utf-8", "replace")
            finally:
                await resp.aclose()
            if 300 <= status_code < 400:
                error = f"redirect to {resp.headers.get('location', '?')[:300]} not followed"
            elif not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except Blocked as exc:
            error = f"blocked: {exc}"
        except httpx.TimeoutException:
            error = f"timed out after {self.cfg.timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        ms = int((time.perf_counter() - started) * 1000)
        if error is None:
            await self._finish(d, hook, "succeeded", status_code, None, excerpt, ms)
        else:
            self.failures += 1
            attempts = d["attempts"] + 1
            status = "dead" if attempts >= self.cfg.max_attempts else "pending"
            await self._finish(d, hook, status, status_code, error, excerpt, ms)

    async def _finish(self, d: dict[str, Any], hook: dict[str, Any] | None, status: str, code: int | None,
                      error: str | None, excerpt: str | None, ms: int) -> None:
        from nexus.kernel.context import system_context

        db = self.nx.db
        now = utcnow()
        attempts = d["attempts"] + (1 if hook is not None else 0)
        next_at = now + timedelta(seconds=self.cfg.backoff(attempts)) if status == "pending" else None
        history = [*(d.get("history") or []), {"at": now.isoformat().replace("+00:00", "Z"), "status_code": code,
                                                 "error": error, "ms": ms}][-20:]
        async with UnitOfWork(db, system_context(d["org_id"])) as uow:
            await uow.conn.execute(
                "UPDATE kernel_webhook_delivery SET status = ?, attempts = ?, next_attempt_at = ?, last_status_code = ?,"
                " last_error = ?, response_excerpt = ?, duration_ms = ?, history = ?, updated_at = ? WHERE id = ?",
                [status, attempts, db.ts(next_at), code, error, excerpt, ms, db.json(history), db.ts(now), d["id"]])
            if hook is None:
                return
            if error is None:
                if hook["consecutive_failures"]:
                    await uow.conn.execute("UPDATE kernel_webhook SET consecutive_failures = 0 WHERE id = ?", [hook["id"]])
                return
            # Counted in the database, not from the row read before the request: two deliveries
            # of one hook failing at the same time must both count (a lost update here once
            # kept a dead receiver enabled).
            await uow.conn.execute(
                "UPDATE kernel_webhook SET consecutive_failures = COALESCE(consecutive_failures, 0) + 1 WHERE id = ?",
                [hook["id"]])
            failures = int(await uow.conn.fetchval("SELECT consecutive_failures FROM kernel_webhook WHERE id = ?",
                                                   [hook["id"]]))
            if failures >= self.cfg.disable_after and hook["enabled"]:
                reason = f"disabled after {failures} failed attempts in a row; last: {error}"[:500]
                n = await uow.conn.execute(
                    "UPDATE kernel_webhook SET enabled = ?, disabled_reason = ?, version = version + 1"
                    " WHERE id = ? AND enabled = ?", [False, reason, hook["id"], True])
                if n != 1:
                    return  # a concurrent failure disabled it (and told the owner) first
                uow.audit("webhooks", "subscriptions", hook["id"], "disabled", None, {"reason": reason})
                uow.emit("nexus.webhooks.subscription.disabled", hook["id"], {"id": hook["id"], "record": None,
                                                                               "previous": None, "reason": reason})
                if hook["created_by"]:
                    await uow.notify(hook["created_by"], "webhooks.disabled", "A webhook was disabled",
                                     f"{hook['url']} failed {failures} times in a row and was disabled. {error}",
                                     f"/webhooks/subscriptions/{hook['id']}")


# -- delivery log API ------------------------------------------------------------------------------


async def list_deliveries(req: Request) -> Response:
    """The delivery log, newest first; filter by webhook_id and status."""
    nx: Nexus = req.scope["nexus"]
    p = await nx.principal(req)
    require(p, "webhooks.subscriptions.read")
    params = query_params(req)
    unknown = set(params) - {"webhook_id", "status", "limit", "cursor"}
    if unknown:
        raise bad_request(f"Unknown parameter {sorted(unknown)[0]!r}.")
    sql = f"SELECT {DELIVERY.select_list} FROM kernel_webhook_delivery WHERE org_id = ?"
    args: list[Any] = [p.org_id]
    for key in ("webhook_id", "status"):
        if params.get(key):
            sql += f" AND {key} = ?"
            args.append(params[key][0])
    if params.get("cursor"):
        if not is_id(params["cursor"][0]):
            raise bad_request("The cursor is invalid.", pointer="/query/cursor")
        sql += " AND id < ?"
        args.append(params["cursor"][0])
    try:
        limit = int((params.get("limit") or ["50"])[0])
    except ValueError:
        raise bad_request("limit is an integer from 1 to 500.") from None
    if not 1 <= limit <= 500:
        raise bad_request("limit is an integer from 1 to 500.")
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit + 1)
    async with nx.db.reader() as conn:
        rows = await conn.fetch(sql, args)
    items = [DELIVERY.to_output(nx.db.dialect, r) for r in rows[:limit]]
    return json_response({"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None})


async def redeliver(req: Request) -> Response:
    """Send a delivery's event again, as a new delivery."""
    nx: Nexus = req.scope["nexus"]
    p = await nx.principal(req)
    require(p, "webhooks.subscriptions.update")
    did = req.scope["path_params"]["id"]
    if not is_id(did):
        raise not_found("delivery")
    db = nx.db
    async with db.reader() as conn:
        row = await conn.fetchrow("SELECT webhook_id, event_id, event_type FROM kernel_webhook_delivery"
                                  " WHERE org_id = ? AND id = ?", [p.org_id, did])
    if row is None:
        raise not_found("delivery")
    new = new_id()
    now = db.ts(utcnow())
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO kernel_webhook_delivery (id, org_id, webhook_id, event_id, event_type, status, attempts,"
            " next_attempt_at, history, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [new, p.org_id, row[0], row[1], row[2], "pending", 0, now, db.json([]), now, now])
    nx.state["webhooks.sender"].wake.set()
    return json_response({"id": new, "status": "pending"}, status=202)


def install(nx: Nexus) -> None:
    cfg = WebhookConfig.from_env()
    box = SecretBox(nx.settings.secret_key, "webhook-signing-secrets")
    nx.state["webhooks.config"] = cfg
    nx.state["webhooks.box"] = box
    PRIVILEGED_APPS.add("webhooks")
    resource = subscriptions_resource()
    service = resource.service_instance
    assert isinstance(service, WebhookService)
    service.nexus = nx
    service.references_resolver = nx.table_for
    nx.resources[("webhooks", "subscriptions")] = resource
    nx.all_resources[resource.key] = resource
    for verb in ("created", "updated", "deleted", "restored", "secret_rotated", "pinged", "disabled"):
        nx.events.register_type(EventType(resource.event_type(verb), "1", f"A webhook subscription was {verb}.",
                                          record_event_schema(resource.event_type(verb)), resource.key))
    nx.events.subscribe("kernel.webhooks", "nexus.*", enqueue_deliveries)
    sender = Sender(nx, cfg, box)
    nx.state["webhooks.sender"] = sender
    nx.on("background", sender.start)
    nx.on("shutdown", sender.stop)
    nx.router.add(RouteDef("GET", "/api/v1/webhooks/deliveries", list_deliveries, tags=("webhooks",),
                           summary="Webhook delivery log"))
    nx.router.add(RouteDef("POST", "/api/v1/webhooks/deliveries/{id}/redeliver", redeliver, tags=("webhooks",),
                           summary="Redeliver", status=202))
    from nexus.kernel.notifications import register_type

    register_type(nx, "webhooks.disabled", "A webhook you created was disabled after repeated failures")


__all__ = ["Blocked", "WebhookConfig", "check_url", "install", "resolve_safely", "sign"]
