"""Domain events (DESIGN.md §5): transactional outbox, one dispatcher, idempotent consumers.

* A unit of work writes its events to `kernel_outbox` in the same transaction as the change.
* One process at a time (a lease in `kernel_lease`) dispatches: in id order it gives each
  event a `position`, hands it to every matching in-process subscriber, relays it to NATS
  JetStream when configured, and marks it dispatched. Delivery is at least once; the kernel
  records (consumer, event id) in the subscriber's own transaction, so a redelivered event is
  skipped — consumers are idempotent without doing anything.
* A failing subscriber holds the stream (so per-record order holds) and is retried with
  back-off; after MAX_ATTEMPTS the event is dead-lettered (`error` set) and the stream moves on.
* The NATS relay is not a subscriber: an event is marked dispatched only after JetStream has
  acknowledged it (dead-lettered events are relayed too). While NATS is unreachable or does
  not acknowledge, the stream is held and retried forever with back-off — an outage never
  dead-letters or skips an event. A publish that timed out may still have been stored: it is
  sent again with the same `Nats-Msg-Id`, so JetStream drops it within its duplicate window
  (and a consumer may see a duplicate after a longer outage — never a gap).
* Readers (the polling API, the WebSocket fan-out of every process) tail by `position`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from nexus.kernel.context import system_context
from nexus.kernel.jsonutil import loads, utcnow
from nexus.kernel.records import UnitOfWork

if TYPE_CHECKING:
    from nexus.kernel.db import Database

log = logging.getLogger("nexus.events")

MAX_ATTEMPTS = 8
BATCH = 200
LEASE_SECONDS = 10
SPEC_VERSION = "1.0"

Handler = Callable[[UnitOfWork, dict[str, Any]], Awaitable[None]]


class RelayUnavailable(Exception):
    """NATS did not acknowledge a publish: the stream is held and retried, nothing is dead-lettered."""


class _HandlerFailed(Exception):
    def __init__(self, event_id: str, error: BaseException) -> None:
        super().__init__(f"{event_id}: {error}")
        self.event_id = event_id
        self.error = error


@dataclass(frozen=True)
class EventType:
    type: str
    version: str
    description: str
    schema: dict[str, Any]
    resource: str | None = None  # "app.resource" whose read permission guards the event


@dataclass
class Subscriber:
    name: str
    pattern: str
    handler: Handler

    def matches(self, event_type: str) -> bool:
        return fnmatch.fnmatchcase(event_type, self.pattern)


def record_event_schema(title: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "required": ["id", "record"],
        "properties": {
            "id": {"type": "string", "description": "the record's id"},
            "record": {"type": ["object", "null"], "description": "the record after the change"},
            "previous": {"type": ["object", "null"], "description": "the record before the change"},
        },
    }


def to_cloudevent(row: dict[str, Any]) -> dict[str, Any]:
    """A stored outbox row as a CloudEvents 1.0 structured event (JSON format)."""
    data = row["data"]
    if isinstance(data, (str, bytes)):
        data = loads(data)
    t = row["time"]
    return {
        "specversion": SPEC_VERSION,
        "id": row["id"],
        "source": row["source"],
        "type": row["type"],
        "subject": row["subject"],
        "time": t if isinstance(t, str) else t.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "nexusorgid": row["org_id"],
        "nexusposition": row.get("position"),
        "data": data,
    }


@dataclass
class EventBus:
    db: Database
    nats_url: str | None = None
    nats_stream: str = "NEXUS"
    types: dict[str, EventType] = field(default_factory=dict)
    subscribers: list[Subscriber] = field(default_factory=list)
    listeners: list[Callable[[list[dict[str, Any]]], Awaitable[None]]] = field(default_factory=list)
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}")
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _nats: Any = None
    _leases: dict[str, float] = field(default_factory=dict)
    _js: Any = None
    last_position: int = 0
    relay_failures: int = 0  # consecutive rounds in which NATS did not acknowledge

    # -- declaration -------------------------------------------------------------------
    def register_type(self, et: EventType) -> None:
        self.types[et.type] = et

    def subscribe(self, name: str, pattern: str, handler: Handler) -> None:
        """`handler(uow, cloud_event)` runs in its own unit of work (the event's org)."""
        if any(s.name == name for s in self.subscribers):
            raise ValueError(f"subscriber {name!r} is registered twice")
        self.subscribers.append(Subscriber(name, pattern, handler))

    def on_dispatched(self, fn: Callable[[list[dict[str, Any]]], Awaitable[None]]) -> None:
        """Called in every process with each batch of newly positioned events (WebSocket fan-out)."""
        self.listeners.append(fn)

    def wake(self) -> None:
        self._wake.set()

    # -- running ------------------------------------------------------------------------
    async def start(self) -> None:
        async with self.db.reader() as conn:
            self.last_position = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM kernel_outbox") or 0)
        if self.nats_url:
            try:
                await self._connect_nats()
            except Exception as exc:  # NATS down at start: the dispatcher connects when it can
                log.warning("NATS unreachable at start; events wait in the outbox until it is",
                            extra={"fields": {"error": str(exc)[:300]}})
        self._tasks.append(asyncio.create_task(self._dispatch_loop(), name="nexus-outbox-dispatcher"))
        self._tasks.append(asyncio.create_task(self._tail_loop(), name="nexus-event-tail"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self._nats is not None:
            with contextlib.suppress(Exception):
                await self._nats.drain()
            self._nats = None
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM kernel_lease WHERE name = 'outbox' AND holder = ?", [self.holder])

    async def _dispatch_loop(self) -> None:
        delay = 0.2
        while True:
            # Cleared BEFORE the round reads the outbox: a commit during the round wakes the
            # next one at once instead of waiting out the idle delay.
            self._wake.clear()
            idle = False
            try:
                if await self.acquire_lease("outbox"):
                    more = await self.dispatch_once()
                    self.relay_failures = 0
                    delay, idle = (0.0, False) if more else (0.2, True)
                else:
                    delay = 1.0
            except asyncio.CancelledError:
                raise
            except RelayUnavailable as exc:
                # NATS is down or not acknowledging: hold the stream and retry with back-off,
                # forever. Subscribers already handled the batch; redelivery is deduplicated.
                self.relay_failures += 1
                delay = min(0.1 * 2 ** min(self.relay_failures - 1, 5), 2.0)
                log.warning("NATS relay unavailable; holding the outbox",
                            extra={"fields": {"failures": self.relay_failures, "retry_in": delay,
                                              "error": str(exc)[:300]}})
                await asyncio.sleep(delay)
                continue
            except Exception:
                log.exception("outbox dispatch failed")
                delay = 2.0
            if delay:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                if idle:
                    await asyncio.sleep(0.002)  # let a burst of commits form one batch

    async def acquire_lease(self, name: str, seconds: int = LEASE_SECONDS) -> bool:
        """Hold the named lease: True while this process is its holder. Renewed in the
        database only when half of it has run out, so holding it costs no write per round."""
        held = self._leases.get(name)
        if held is not None and held > time.monotonic():
            return True
        db = self.db
        now = utcnow()
        until = now + timedelta(seconds=seconds)
        async with db.transaction() as conn:
            n = await conn.execute(
                "UPDATE kernel_lease SET holder = ?, expires_at = ? WHERE name = ? AND (holder = ? OR expires_at < ?)",
                [self.holder, db.ts(until), name, self.holder, db.ts(now)])
            if n != 1:
                exists = await conn.fetchval("SELECT 1 FROM kernel_lease WHERE name = ?", [name])
                if exists:
                    self._leases.pop(name, None)
                    return False
                await conn.execute(
                    "INSERT INTO kernel_lease (name, holder, expires_at) VALUES (?,?,?) ON CONFLICT (name) DO NOTHING",
                    [name, self.holder, db.ts(until)])
                holder = await conn.fetchval("SELECT holder FROM kernel_lease WHERE name = ?", [name])
                if holder != self.holder:
                    self._leases.pop(name, None)
                    return False
        self._leases[name] = time.monotonic() + seconds / 2
        return True

    async def dispatch_once(self) -> bool:
        """Dispatch one batch; True when there may be more waiting.

        Each subscriber handles the batch's events of one org in ONE unit of work (with the
        dedup rows), so a burst of writes costs a few transactions, not several per event.
        If a handler fails, the batch is retried event by event to find the failing one,
        hold the stream there (per-record order), and dead-letter it after MAX_ATTEMPTS."""
        db = self.db
        async with db.reader() as conn:
            rows = await conn.fetch(
                "SELECT id, org_id, type, source, subject, time, data, actor_id, position, attempts"
                " FROM kernel_outbox WHERE dispatched_at IS NULL ORDER BY id LIMIT ?", [BATCH])
        if not rows:
            return False
        batch = [dict(zip(("id", "org_id", "type", "source", "subject", "time", "data", "actor_id", "position",
                           "attempts"), r, strict=True)) for r in rows]
        events = [to_cloudevent(row) for row in batch]
        done: list[dict[str, Any]] = []
        dead: list[dict[str, Any]] = []
        failed_at: int | None = None
        failure: BaseException | None = None
        try:
            await self._deliver_batch(events)
            done = list(batch)
        except _HandlerFailed as f:
            failed_at = next(i for i, e in enumerate(events) if e["id"] == f.event_id)
            failure = f.error
            try:
                # The failure rolled back the events before it too: deliver them again.
                await self._deliver_batch(events[:failed_at])
                done = list(batch[:failed_at])
            except _HandlerFailed as f2:
                failed_at = next(i for i, e in enumerate(events) if e["id"] == f2.event_id)
                failure = f2.error
                for row, event in zip(batch[:failed_at], events[:failed_at], strict=True):
                    await self._deliver_batch([event])
                    done.append(row)
        if failed_at is not None and failure is not None:
            row = batch[failed_at]
            attempts = (row["attempts"] or 0) + 1
            is_dead = attempts >= MAX_ATTEMPTS
            log.warning("event delivery failed", extra={"fields": {
                "event": row["id"], "type": row["type"], "attempts": attempts, "dead": is_dead,
                "error": str(failure)[:300]}})
            row["error"] = f"{type(failure).__name__}: {failure}"[:2000]
            row["attempts"] = attempts
            if is_dead:
                dead.append(row)
            else:
                async with db.transaction() as conn:
                    await conn.execute("UPDATE kernel_outbox SET attempts = ?, error = ? WHERE id = ?",
                                       [attempts, row["error"], row["id"]])
                await asyncio.sleep(min(0.05 * 2 ** attempts, 5.0))
                # the stream is held here: later events (of the same record) must wait
        finished = sorted(done + dead, key=lambda r: r["id"])
        if finished and self.nats_url:
            # Acknowledged by JetStream before it is marked dispatched; raises RelayUnavailable.
            ids = {r["id"] for r in finished}
            await self._relay([e for e in events if e["id"] in ids])
        if finished:
            now = db.ts(utcnow())
            async with db.transaction() as conn:
                top = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM kernel_outbox") or 0)
                plain: list[tuple[Any, ...]] = []
                for row in finished:
                    if row["position"] is None:
                        top += 1
                        row["position"] = top
                    if "error" in row:
                        await conn.execute(
                            "UPDATE kernel_outbox SET position = ?, dispatched_at = ?, attempts = ?, error = ?"
                            " WHERE id = ?", [row["position"], now, row["attempts"], row["error"], row["id"]])
                    else:
                        plain.append((row["position"], now, row["id"]))
                if plain:  # one pipelined statement for the batch, not a round trip per event
                    await conn.executemany("UPDATE kernel_outbox SET position = ?, dispatched_at = ? WHERE id = ?",
                                           plain)
            self.wake_tail()
        return len(rows) == BATCH and len(finished) == len(batch)

    async def _deliver_batch(self, events: list[dict[str, Any]]) -> None:
        for sub in self.subscribers:
            by_org: dict[str, list[dict[str, Any]]] = {}
            for ev in events:
                if sub.matches(ev["type"]):
                    by_org.setdefault(ev["nexusorgid"], []).append(ev)
            for org_id, evs in by_org.items():
                async with UnitOfWork(self.db, system_context(org_id)) as uow:
                    ids = [e["id"] for e in evs]
                    seen = {r[0] for r in await uow.conn.fetch(
                        f"SELECT event_id FROM kernel_event_consumption WHERE consumer = ?"
                        f" AND event_id IN ({','.join('?' * len(ids))})", [sub.name, *ids])}
                    fresh = [e for e in evs if e["id"] not in seen]
                    for ev in fresh:
                        try:
                            await sub.handler(uow, ev)
                        except Exception as exc:
                            raise _HandlerFailed(ev["id"], exc) from exc
                    if fresh:
                        await uow.conn.executemany(
                            "INSERT INTO kernel_event_consumption (consumer, event_id, at) VALUES (?,?,?)",
                            [(sub.name, e["id"], self.db.ts(uow.now)) for e in fresh])

    async def _relay(self, events: list[dict[str, Any]]) -> None:
        """Publish to JetStream in order, each acknowledged (PubAck) before the next; any
        failure raises RelayUnavailable so that none of these events is marked dispatched."""
        import orjson

        try:
            if self._js is None:
                await self._connect_nats()
            for ev in events:
                subject = f"{self.nats_stream.lower()}.{ev['type']}"
                data = orjson.dumps(ev)
                try:
                    await self._js.publish(subject, data, timeout=2.0, headers={"Nats-Msg-Id": ev["id"]})
                except Exception as exc:
                    import nats.js.errors

                    if not isinstance(exc, nats.js.errors.NoStreamResponseError):
                        raise
                    # no stream answers (a fresh NATS without our store): make it, publish again
                    await self._ensure_stream()
                    await self._js.publish(subject, data, timeout=2.0, headers={"Nats-Msg-Id": ev["id"]})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise RelayUnavailable(f"{type(exc).__name__}: {exc}") from exc

    # -- tailing (every process) ----------------------------------------------------------
    def wake_tail(self) -> None:
        self._tail_wake.set()

    @property
    def _tail_wake(self) -> asyncio.Event:
        ev = getattr(self, "_tail_event", None)
        if ev is None:
            ev = asyncio.Event()
            self._tail_event = ev
        return ev

    async def _tail_loop(self) -> None:
        while True:
            try:
                await self.tail_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event tail failed")
            self._tail_wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._tail_wake.wait(), 0.5)

    async def tail_once(self) -> list[dict[str, Any]]:
        if not self.listeners:
            return []
        async with self.db.reader() as conn:
            rows = await conn.fetch(
                "SELECT id, org_id, type, source, subject, time, data, actor_id, position FROM kernel_outbox"
                " WHERE position > ? ORDER BY position LIMIT 500", [self.last_position])
        if not rows:
            return []
        events = [to_cloudevent(dict(zip(("id", "org_id", "type", "source", "subject", "time", "data", "actor_id",
                                           "position"), r, strict=True))) for r in rows]
        self.last_position = events[-1]["nexusposition"]
        for fn in self.listeners:
            try:
                await fn(events)
            except Exception:
                log.exception("event listener failed")
        return events

    # -- NATS JetStream relay --------------------------------------------------------------
    async def _connect_nats(self) -> None:
        import nats

        assert self.nats_url is not None
        nc = await nats.connect(self.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                connect_timeout=2, name=f"nexus {self.holder}")
        try:
            self._js = nc.jetstream()
            await self._ensure_stream()
        except BaseException:
            self._js = None
            with contextlib.suppress(Exception):
                await nc.close()
            raise
        self._nats = nc

    async def _ensure_stream(self) -> None:
        try:
            await self._js.stream_info(self.nats_stream)
        except Exception:
            # Subjects are <stream>.<event type>; JetStream drops a message whose Nats-Msg-Id it
            # saw in the last two minutes, so a redelivered event is published once.
            await self._js.add_stream(name=self.nats_stream, subjects=[f"{self.nats_stream.lower()}.>"],
                                      duplicate_window=120)
