"""The ceiling: a bare ASGI app (no framework, no auth) over the raw database driver.

It reads and writes the very same `tasks_task` table as NEXUS, in the same database, and
is served by the same server (granian, ASGI interface, same worker count), so the
difference between it and NEXUS is what the framework, auth, validation, audit and
outbox cost. Configured by environment variables:

    BENCH_DATABASE   sqlite:///path/to/nexus.db  or  postgresql://user@host:port/db
    BENCH_ORG_ID     the org whose rows are read and written
    BENCH_POOL_SIZE  asyncpg pool size (default 10, NEXUS's NEXUS_DB_POOL_SIZE default)
    BENCH_COLUMNS, BENCH_TABLE_COLUMNS, BENCH_EXTRA_DEFAULTS   the task model's shape (see COLUMNS)

Endpoints (all JSON via orjson):

    GET  /tasks/{id}                                one row by org_id and id          (d)
    GET  /tasks?assignee_id=..&status=..            50 rows ordered by due_at, id    (e)
    POST /tasks  {"title", "assignee_id", "status", "due_at"}   one-row insert      (f)
    GET  /health

Run it with `python benchmarks/baseline.py --port P --workers N` (what the runner does):
that serves `baseline:app` through `granian.Granian` with the arguments `nexus serve` uses.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson

# The columns NEXUS's generic read returns for a task (its TableSpec select list, same order);
# the runner passes the current list in BENCH_COLUMNS, the table's columns in BENCH_TABLE_COLUMNS,
# and in BENCH_EXTRA_DEFAULTS (JSON) the values for columns a newer model may have added.
COLUMNS: tuple[str, ...] = (
    "id", "project_id", "parent_id", "title", "description", "status", "priority", "assignee_id", "due_at",
    "due_date", "due_timezone", "all_day", "recurrence", "labels", "checklist", "position", "completed_at",
    "completed_by", "recurrence_of", "next_occurrence_id", "org_id", "created_at", "created_by", "updated_at",
    "updated_by", "version", "deleted_at",
)
EXTRA_DEFAULTS: dict[str, Any] = {}
INSERT_COLUMNS: tuple[str, ...] = COLUMNS
GET_SQL = LIST_SQL = INSERT_SQL = ""
_JSON_COLS: tuple[int, ...] = ()
_BOOL_COLS: tuple[int, ...] = ()


def configure() -> None:
    """Build the statements once, from the environment (at start-up, in the worker)."""
    global COLUMNS, EXTRA_DEFAULTS, INSERT_COLUMNS, GET_SQL, LIST_SQL, INSERT_SQL, _JSON_COLS, _BOOL_COLS
    if os.environ.get("BENCH_COLUMNS"):
        COLUMNS = tuple(os.environ["BENCH_COLUMNS"].split(","))
    EXTRA_DEFAULTS = orjson.loads(os.environ.get("BENCH_EXTRA_DEFAULTS") or "{}")
    select = ", ".join(COLUMNS)
    GET_SQL = f"SELECT {select} FROM tasks_task WHERE org_id = ? AND id = ? AND deleted_at IS NULL"
    LIST_SQL = (f"SELECT {select} FROM tasks_task WHERE org_id = ? AND assignee_id = ? AND status = ?"
                " AND deleted_at IS NULL ORDER BY due_at ASC NULLS LAST, id ASC LIMIT 50")
    table = os.environ.get("BENCH_TABLE_COLUMNS", "").split(",") if os.environ.get("BENCH_TABLE_COLUMNS") else None
    INSERT_COLUMNS = tuple(c for c in dict.fromkeys([*_ROW_COLUMNS, *EXTRA_DEFAULTS])
                           if table is None or c in table)
    INSERT_SQL = (f"INSERT INTO tasks_task ({', '.join(INSERT_COLUMNS)})"
                  f" VALUES ({', '.join('?' * len(INSERT_COLUMNS))})")
    _JSON_COLS = tuple(i for i, c in enumerate(COLUMNS) if c in ("labels", "checklist"))
    _BOOL_COLS = tuple(i for i, c in enumerate(COLUMNS) if c == "all_day")


_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_id_lock = threading.Lock()
_id_last = [0, 0]


def new_id() -> str:
    """A ULID-layout id, like NEXUS's (26 Crockford base32 characters, time-sortable)."""
    ms = int(time.time() * 1000)
    with _id_lock:
        if ms <= _id_last[0]:
            ms, rand = _id_last[0], _id_last[1] + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1
        _id_last[0], _id_last[1] = ms, rand
    value = (ms << 80) | (rand & ((1 << 80) - 1))
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def _pg(sql: str) -> str:
    n = 0
    out = []
    for ch in sql:
        if ch == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(ch)
    return "".join(out)


def _parse_ts(text: str) -> datetime:
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def _sqlite_ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqliteStore:
    """stdlib sqlite3 with the pragmas NEXUS uses (WAL, synchronous=NORMAL); statements run
    inline on the event loop, one reader and one writer connection, as NEXUS does."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.reader: sqlite3.Connection | None = None
        self.writer: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000", "cache_size=-65536",
                       "temp_store=MEMORY"):
            con.execute(f"PRAGMA {pragma}")
        return con

    async def open(self) -> None:
        self.reader = self._connect()
        self.writer = self._connect()

    async def close(self) -> None:
        for con in (self.reader, self.writer):
            if con is not None:
                con.close()

    @staticmethod
    def _row(row: Any) -> dict[str, Any]:
        values = list(row)
        for i in _JSON_COLS:
            if values[i] is not None:
                values[i] = orjson.loads(values[i])
        for i in _BOOL_COLS:
            values[i] = bool(values[i])
        return dict(zip(COLUMNS, values, strict=True))

    async def get(self, org_id: str, task_id: str) -> dict[str, Any] | None:
        assert self.reader is not None
        row = self.reader.execute(GET_SQL, (org_id, task_id)).fetchone()
        return None if row is None else self._row(row)

    async def list(self, org_id: str, assignee_id: str, status: str) -> list[dict[str, Any]]:
        assert self.reader is not None
        return [self._row(r) for r in self.reader.execute(LIST_SQL, (org_id, assignee_id, status)).fetchall()]

    async def insert(self, row: dict[str, Any]) -> None:
        assert self.writer is not None
        values = dict(row)
        for k in ("due_at", "created_at", "updated_at"):
            if values[k] is not None:
                values[k] = _sqlite_ts(values[k])
        values["labels"] = values["checklist"] = "[]"
        values["all_day"] = int(values["all_day"])
        for k, v in EXTRA_DEFAULTS.items():
            values.setdefault(k, orjson.dumps(v).decode() if isinstance(v, (list, dict)) else v)
        self.writer.execute(INSERT_SQL, [values[c] for c in INSERT_COLUMNS])


class PgStore:
    """An asyncpg pool (NEXUS's default size), JSON columns decoded with orjson as NEXUS does."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self.pool: Any = None
        self.get_sql, self.list_sql, self.insert_sql = _pg(GET_SQL), _pg(LIST_SQL), _pg(INSERT_SQL)

    async def open(self) -> None:
        import asyncpg

        async def init(con: Any) -> None:
            for typ in ("json", "jsonb"):
                await con.set_type_codec(typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
                                         schema="pg_catalog")

        async def no_reset(con: Any) -> None:
            return None

        self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.size, init=init, reset=no_reset)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def get(self, org_id: str, task_id: str) -> dict[str, Any] | None:
        async with self.pool.acquire() as con:
            row = await con.fetchrow(self.get_sql, org_id, task_id)
        return None if row is None else dict(zip(COLUMNS, row, strict=True))

    async def list(self, org_id: str, assignee_id: str, status: str) -> list[dict[str, Any]]:
        async with self.pool.acquire() as con:
            rows = await con.fetch(self.list_sql, org_id, assignee_id, status)
        return [dict(zip(COLUMNS, r, strict=True)) for r in rows]

    async def insert(self, row: dict[str, Any]) -> None:
        values = {**EXTRA_DEFAULTS, **row}
        async with self.pool.acquire() as con:
            await con.execute(self.insert_sql, *[values[c] for c in INSERT_COLUMNS])


def _store() -> SqliteStore | PgStore:
    url = os.environ["BENCH_DATABASE"]
    if url.startswith("sqlite:///"):
        return SqliteStore(url[len("sqlite:///"):])
    return PgStore(url, int(os.environ.get("BENCH_POOL_SIZE", "10")))


STORE: SqliteStore | PgStore = SqliteStore(":memory:")  # replaced at start-up
ORG_ID = os.environ.get("BENCH_ORG_ID", "")
JSON_HEADERS = [(b"content-type", b"application/json")]


async def _send(send: Any, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            return b"".join(chunks)


_ROW_COLUMNS = (
    "id", "project_id", "parent_id", "title", "description", "status", "priority", "assignee_id", "due_at",
    "due_date", "due_timezone", "all_day", "recurrence", "labels", "checklist", "position", "completed_at",
    "completed_by", "recurrence_of", "next_occurrence_id", "org_id", "created_at", "created_by", "updated_at",
    "updated_by", "version", "deleted_at",
)


def _new_row(data: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    due = data.get("due_at")
    return {
        "id": new_id(), "project_id": None, "parent_id": None, "title": str(data["title"]), "description": "",
        "status": data.get("status") or "todo", "priority": 0, "assignee_id": data.get("assignee_id"),
        "due_at": _parse_ts(due) if due else None, "due_date": None, "due_timezone": "UTC", "all_day": False,
        "recurrence": None, "labels": [], "checklist": [], "position": 0.0, "completed_at": None,
        "completed_by": None, "recurrence_of": None, "next_occurrence_id": None, "org_id": ORG_ID,
        "created_at": now, "created_by": None, "updated_at": now, "updated_by": None, "version": 1,
        "deleted_at": None,
    }


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global STORE
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                configure()
                STORE = _store()
                await STORE.open()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await STORE.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if kind != "http":
        return
    path: str = scope["path"]
    method: str = scope["method"]
    if path.startswith("/tasks/") and method == "GET":
        row = await STORE.get(ORG_ID, path[7:])
        if row is None:
            await _send(send, 404, {"detail": "not found"})
        else:
            await _send(send, 200, row)
    elif path == "/tasks" and method == "GET":
        q = parse_qs(scope["query_string"].decode("latin-1"))
        items = await STORE.list(ORG_ID, q["assignee_id"][0], q["status"][0])
        await _send(send, 200, {"items": items, "next_cursor": None})
    elif path == "/tasks" and method == "POST":
        row = _new_row(orjson.loads(await _read_body(receive)))
        await STORE.insert(row)
        await _send(send, 201, row)
    elif path == "/health":
        await _send(send, 200, {"ok": True})
    else:
        await _send(send, 404, {"detail": "not found"})


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the bare ASGI baseline with granian.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    from granian import Granian
    from granian.constants import Interfaces

    # The same server arguments as `nexus serve` (src/nexus/kernel/cli.py), bar the factory.
    server: Any = Granian(
        "baseline:app",
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        log_access=False,
        backlog=2048,
    )
    server.serve()


if __name__ == "__main__":
    main()
