"""Domain events (DESIGN.md §5): transactional outbox, one dispatcher, idempotent consumers.

* A unit of work writes its events to `kernel_outbox` in the same transaction as the change.
* One process at a time (a lease in `kernel_lease`) dispatches: in id order it gives each
  event a `position`, relays it to NATS JetStream when configured, and marks it dispatched.
* Each subscriber is its own consumer (its name): every process runs a consumer for each
  subscriber it hosts, one of them at a time holding the lease `consumer:<name>`; it reads
  events by position after its cursor (`kernel_event_cursor`) and advances the cursor after
  each batch — so a process serving a subset of the apps never hides events from subscribers
  that only another process has. Delivery is at least once; the kernel records (consumer,
  event id) in the subscriber's own transaction, so a redelivered event is skipped.
* A failing subscriber holds its own consumer (so per-record order holds) and is retried with
  back-off; after MAX_ATTEMPTS the event is dead for that consumer (noted on the outbox row,
  `error`) and that consumer moves on.
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


_COLS = ("id", "org_id", "type", "source", "subject", "time", "data", "actor_id", "position")


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
    replay: bool = False  # a new consumer reads the whole stream instead of starting at its end

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
    _consumer_wakes: dict[str, asyncio.Event] = field(default_factory=dict)
    _failures: dict[str, tuple[str, int]] = field(default_factory=dict)  # consumer -> (event id, attempts)
    _running: bool = False
    last_position: int = 0
    relay_failures: int = 0  # consecutive rounds in which NATS did not acknowledge

    # -- declaration -------------------------------------------------------------------
    def register_type(self, et: EventType) -> None:
        self.types[et.type] = et

    def subscribe(self, name: str, pattern: str, handler: Handler, *, replay: bool = False) -> None:
        """`handler(uow, cloud_event)` runs in its own unit of work (the event's org).

        The name is the consumer: its cursor and lease, shared by every process that hosts
        a subscriber of that name (so it must only be used for the same handling). A new
        consumer starts at the end of the stream unless `replay`."""
        if any(s.name == name for s in self.subscribers):
            raise ValueError(f"subscriber {name!r} is registered twice")
        sub = Subscriber(name, pattern, handler, replay)
        self.subscribers.append(sub)
        if self._running:
            self._start_consumer(sub, self.last_position)

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
        for sub in self.subscribers:
            self._start_consumer(sub, self.last_position)
        self._running = True

    async def stop(self) -> None:
        self._running = False
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        self._consumer_wakes.clear()
        if self._nats is not None:
            with contextlib.suppress(Exception):
                await self._nats.drain()
            self._nats = None
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM kernel_lease WHERE holder = ? AND (name = 'outbox' OR name LIKE 'consumer:%')",
                               [self.holder])
        self._leases.clear()

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
                # forever. Nothing is positioned until JetStream acknowledged it.
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
        """Position (and relay) one batch; True when there may be more waiting.

        The dispatcher no longer calls subscribers: each subscriber is its own consumer
        (see `consume_once`), run by whichever process hosts it, so a process that serves a
        subset of the apps never hides events from subscribers that only another one has."""
        db = self.db
        async with db.reader() as conn:
            rows = await conn.fetch(
                "SELECT id, org_id, type, source, subject, time, data, actor_id, position"
                " FROM kernel_outbox WHERE dispatched_at IS NULL ORDER BY id LIMIT ?", [BATCH])
        if not rows:
            return False
        batch = [dict(zip(_COLS, r, strict=True)) for r in rows]
        if self.nats_url:
            # Acknowledged by JetStream before it is marked dispatched; raises RelayUnavailable.
            await self._relay([to_cloudevent(row) for row in batch])
        now = db.ts(utcnow())
        async with db.transaction() as conn:
            top = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM kernel_outbox") or 0)
            plain: list[tuple[Any, ...]] = []
            for row in batch:
                if row["position"] is None:
                    top += 1
                    row["position"] = top
                plain.append((row["position"], now, row["id"]))
            # one pipelined statement for the batch, not a round trip per event
            await conn.executemany("UPDATE kernel_outbox SET position = ?, dispatched_at = ? WHERE id = ?", plain)
        self.wake_tail()
        self.wake_consumers()
        return len(rows) == BATCH

    # -- consumers (every process, one per subscriber it hosts) ---------------------------
    def wake_consumers(self) -> None:
        for ev in self._consumer_wakes.values():
            ev.set()

    def _start_consumer(self, sub: Subscriber, start_at: int) -> None:
        self._consumer_wakes[sub.name] = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._consume_loop(sub, start_at),
                                               name=f"nexus-consumer:{sub.name}"))

    async def _init_cursor(self, sub: Subscriber, start_at: int) -> None:
        """A consumer seen for the first time starts at `start_at` (no replay of history)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO kernel_event_cursor (consumer, position, updated_at) VALUES (?,?,?)"
                " ON CONFLICT (consumer) DO NOTHING", [sub.name, 0 if sub.replay else start_at,
                                                       self.db.ts(utcnow())])

    async def _consume_loop(self, sub: Subscriber, start_at: int) -> None:
        wake = self._consumer_wakes[sub.name]
        while True:
            try:
                await self._init_cursor(sub, start_at)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event consumer could not start", extra={"fields": {"consumer": sub.name}})
                await asyncio.sleep(2.0)
        while True:
            wake.clear()
            try:
                if await self.acquire_lease(f"consumer:{sub.name}"):
                    more = await self.consume_once(sub)
                    delay = 0.0 if more else 0.5
                else:
                    delay = 1.0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event consumer failed", extra={"fields": {"consumer": sub.name}})
                delay = 2.0
            if delay:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)

    async def consume_once(self, sub: Subscriber) -> bool:
        """Hand the next batch of positioned events to one subscriber; True when there may be more.

        The batch's matching events of one org run in ONE unit of work (with the dedup rows).
        If the handler fails, the events before the failing one are delivered, the cursor
        stops there (this consumer is held, per-record order), and the failing event is
        retried with back-off; after MAX_ATTEMPTS it is dead for this consumer: logged,
        noted on the outbox row (`attempts`, `error`), given a dedup row, and skipped."""
        db = self.db
        async with db.reader() as conn:
            cursor = await conn.fetchval("SELECT position FROM kernel_event_cursor WHERE consumer = ?", [sub.name])
            if cursor is None:
                return False
            rows = await conn.fetch(
                "SELECT id, org_id, type, source, subject, time, data, actor_id, position FROM kernel_outbox"
                " WHERE position > ? ORDER BY position LIMIT ?", [int(cursor), BATCH])
        if not rows:
            return False
        events = [to_cloudevent(dict(zip(_COLS, r, strict=True))) for r in rows]
        handled, failure = await self._deliver_prefix(sub, events)
        dead = False
        if failure is not None:
            ev = events[handled]
            prev_id, count = self._failures.get(sub.name, ("", 0))
            attempts = count + 1 if prev_id == ev["id"] else 1
            dead = attempts >= MAX_ATTEMPTS
            log.warning("event delivery failed", extra={"fields": {
                "consumer": sub.name, "event": ev["id"], "type": ev["type"], "attempts": attempts, "dead": dead,
                "error": str(failure)[:300]}})
            error = f"{sub.name}: {type(failure).__name__}: {failure}"[:2000]
            async with db.transaction() as conn:
                await conn.execute("UPDATE kernel_outbox SET attempts = ?, error = ? WHERE id = ?",
                                   [attempts, error, ev["id"]])
                if dead:
                    await conn.execute(
                        "INSERT INTO kernel_event_consumption (consumer, event_id, at) VALUES (?,?,?)"
                        " ON CONFLICT (consumer, event_id) DO NOTHING", [sub.name, ev["id"], db.ts(utcnow())])
            if dead:
                self._failures.pop(sub.name, None)
                handled += 1
            else:
                self._failures[sub.name] = (ev["id"], attempts)
        else:
            self._failures.pop(sub.name, None)
        if handled:
            await self._advance(sub.name, events[handled - 1]["nexusposition"])
        if failure is not None and not dead:
            await asyncio.sleep(min(0.05 * 2 ** self._failures[sub.name][1], 5.0))
            return True
        return len(rows) == BATCH

    async def _advance(self, consumer: str, position: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE kernel_event_cursor SET position = ?, updated_at = ? WHERE consumer = ? AND position < ?",
                [position, self.db.ts(utcnow()), consumer, position])

    async def _deliver_prefix(self, sub: Subscriber,
                              events: list[dict[str, Any]]) -> tuple[int, BaseException | None]:
        """Deliver `events` to `sub`: (how many, from the start, are handled; the failure that stopped it)."""
        try:
            await self._deliver(sub, [e for e in events if sub.matches(e["type"])])
            return len(events), None
        except _HandlerFailed as f:
            failed_at = next(i for i, e in enumerate(events) if e["id"] == f.event_id)
            failure: BaseException = f.error
        # The failure rolled back the events before it too: deliver them again, one by one.
        for i, ev in enumerate(events[:failed_at]):
            if not sub.matches(ev["type"]):
                continue
            try:
                await self._deliver(sub, [ev])
            except _HandlerFailed as f2:
                return i, f2.error
        return failed_at, failure

    async def settled(self) -> bool:
        """True when every event is positioned and every consumer hosted here has read it all."""
        async with self.db.reader() as conn:
            if await conn.fetchval("SELECT count(*) FROM kernel_outbox WHERE dispatched_at IS NULL"):
                return False
            top = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM kernel_outbox") or 0)
            names = [s.name for s in self.subscribers]
            if not names:
                return True
            behind = await conn.fetchval(
                f"SELECT count(*) FROM kernel_event_cursor WHERE position < ?"
                f" AND consumer IN ({','.join('?' * len(names))})", [top, *names])
            known = await conn.fetchval(
                f"SELECT count(*) FROM kernel_event_cursor WHERE consumer IN ({','.join('?' * len(names))})", names)
        return not behind and known == len(names)

    async def _deliver(self, sub: Subscriber, events: list[dict[str, Any]]) -> None:
        by_org: dict[str, list[dict[str, Any]]] = {}
        for ev in events:
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
