"""Table specs and the unit of work: the one path every state change takes.

A `TableSpec` is read once from a SQLAlchemy model and knows how to move values
between Python, the database and JSON for each dialect. A `UnitOfWork` opens one
transaction, scopes every statement to the caller's org, and before it commits
writes the audit entries and outbox events the change produced — so a change, its
audit entry and its event are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, Numeric

from nexus.kernel.context import Context
from nexus.kernel.db import to_pg
from nexus.kernel.errors import Problem, not_found
from nexus.kernel.ids import new_id
from nexus.kernel.jsonutil import dumps, loads, utcnow

if TYPE_CHECKING:
    from nexus.kernel.db import Conn, Database, Row


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    kind: str  # str | int | float | decimal | bool | ts | date | json
    nullable: bool
    max_length: int | None
    scale: int | None = None  # decimal places of a Numeric column


def _kind(col: Any) -> str:
    t = col.type
    if isinstance(t, JSON) or type(t).__name__ in ("JSON", "JSONB"):
        return "json"
    if isinstance(t, DateTime):
        return "ts"
    if isinstance(t, Date):
        return "date"
    if isinstance(t, Boolean):
        return "bool"
    if isinstance(t, Integer):
        return "int"
    if isinstance(t, Numeric) and not isinstance(t, Float):
        return "decimal"
    if isinstance(t, Float):
        return "float"
    variant = getattr(t, "impl", None)
    if variant is not None and (isinstance(variant, JSON)):
        return "json"
    return "str"


_RECORD_TAIL = frozenset({"org_id", "created_at", "created_by", "updated_at", "updated_by", "version", "deleted_at"})


class TableSpec:
    def __init__(self, model: Any, hidden: tuple[str, ...] = ()) -> None:
        table = model.__table__
        self.model = model
        self.name: str = table.name
        cols = sorted(table.columns, key=lambda c: (c.name != "id", c.name in _RECORD_TAIL))
        every = tuple(ColumnSpec(c.name, _kind(c), bool(c.nullable), getattr(c.type, "length", None),
                                 getattr(c.type, "scale", None) if _kind(c) == "decimal" else None) for c in cols)
        self.hidden = frozenset(hidden)
        # `columns`/`names` are what reads return; hidden columns (secrets, hashes) are
        # written but never selected by the generic paths.
        self.columns: tuple[ColumnSpec, ...] = tuple(c for c in every if c.name not in self.hidden)
        self.by_name = {c.name: c for c in every}
        self.all_names = tuple(c.name for c in every)
        self.names = tuple(c.name for c in self.columns)
        self.tenant = "org_id" in self.by_name
        self.soft_delete = "deleted_at" in self.by_name
        self.select_list = ", ".join(self.names)
        self._decoders: dict[str, list[tuple[int, Any]]] = {}
        self.defaults: dict[str, Any] = {}
        for c in cols:
            if c.default is not None and not c.primary_key:
                self.defaults[c.name] = c.default

    def has(self, name: str) -> bool:
        return name in self.by_name

    # -- values --------------------------------------------------------------
    def encode(self, db: Database, name: str, value: Any) -> Any:
        """A Python value to the driver's parameter for this column."""
        if value is None:
            return None
        kind = self.by_name[name].kind
        if kind == "ts":
            return db.ts(value)
        if kind == "json":
            return db.json(value)
        if kind == "date" and db.dialect == "sqlite":
            return value.isoformat()
        if kind == "decimal" and db.dialect == "sqlite":
            return str(value)
        return value

    def decoders(self, dialect: str) -> list[tuple[int, Any]]:
        """Per-column converters needed to turn a driver row into JSON-ready values."""
        got = self._decoders.get(dialect)
        if got is not None:
            return got
        out: list[tuple[int, Any]] = []
        for i, c in enumerate(self.columns):
            if dialect == "sqlite":
                if c.kind == "bool":
                    out.append((i, bool))
                elif c.kind == "json":
                    out.append((i, _json_text))
                elif c.kind == "decimal":
                    out.append((i, _decimal_formatter(c.scale)))
            elif c.kind == "decimal":
                out.append((i, _decimal_formatter(c.scale)))
            elif c.kind == "date":
                out.append((i, _date_str))
        self._decoders[dialect] = out
        return out

    def to_dict(self, dialect: str, row: Row) -> dict[str, Any]:
        values = list(row)
        for i, fn in self.decoders(dialect):
            v = values[i]
            if v is not None:
                values[i] = fn(v)
        return dict(zip(self.names, values, strict=True))

    def to_output(self, dialect: str, row: Row) -> dict[str, Any]:
        """Like to_dict, for a response body only: JSON stored as text on SQLite is passed
        through to the serializer untouched (orjson.Fragment) instead of parsed and re-encoded."""
        key = "out:" + dialect
        decs = self._decoders.get(key)
        if decs is None:
            decs = [(i, orjson.Fragment if fn is _json_text else fn) for i, fn in self.decoders(dialect)]
            self._decoders[key] = decs
        values = list(row)
        for i, fn in decs:
            v = values[i]
            if v is not None:
                values[i] = fn(v)
        return dict(zip(self.names, values, strict=True))


def _json_text(v: Any) -> Any:
    return loads(v) if isinstance(v, (str, bytes)) else v


def _decimal_str(v: Any) -> str:
    return str(v) if not isinstance(v, str) else v


def _decimal_formatter(scale: int | None) -> Any:
    """Money and quantities read back as written on every database: SQLite's NUMERIC affinity
    stores 1500.00 as the integer 1500, so a column with a declared scale is formatted with it."""
    if scale is None:
        return _decimal_str

    def fmt(v: Any) -> str:
        return f"{Decimal(str(v)):.{scale}f}"

    return fmt


def _date_str(v: Any) -> str:
    return v.isoformat() if isinstance(v, date) else str(v)


@dataclass(slots=True)
class AuditEntry:
    app: str
    resource: str
    record_id: str | None
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(slots=True)
class Event:
    type: str
    subject: str | None
    data: dict[str, Any]


class UnitOfWork:
    """`async with UnitOfWork(db, ctx) as uow:` — one atomic change, org-scoped, audited.

    On PostgreSQL the transaction starts lazily: reads before the first write run on the
    same connection in autocommit (READ COMMITTED gives them the same view a transaction
    would), and plain inserts are buffered. A unit of work that only inserts — the common
    create — commits as ONE statement (a chain of data-modifying CTEs: record, audit entry,
    outbox event), which is atomic on its own and saves four round trips. Any other write,
    a locking read, or a read after a buffered insert starts the transaction and flushes the
    buffer first, so the code inside never sees the difference.
    """

    def __init__(self, db: Database, ctx: Context) -> None:
        self.db = db
        self.ctx = ctx
        self.dialect = db.dialect
        self.conn: Conn = None  # type: ignore[assignment]
        self._audit: list[AuditEntry] = []
        self._events: list[Event] = []
        self._cm: Any = None
        self._lazy: _LazyPgConn | None = None
        self._had_events = False
        self.now = utcnow()
        self.after_commit: list[Any] = []

    async def __aenter__(self) -> UnitOfWork:
        if self.dialect == "postgresql":
            self._cm = self.db.pool.acquire()  # type: ignore[attr-defined]
            raw = await self._cm.__aenter__()
            self._lazy = _LazyPgConn(raw)
            self.conn = self._lazy
        else:
            self._cm = self.db.transaction()
            self.conn = await self._cm.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._lazy is not None:
            await self._exit_pg(exc_type)
        else:
            if exc_type is None:
                try:
                    await self._flush()
                except BaseException as flush_exc:
                    await self._cm.__aexit__(type(flush_exc), flush_exc, flush_exc.__traceback__)
                    raise
            await self._cm.__aexit__(exc_type, exc, tb)
        if exc_type is None:
            if self._had_events:
                self.db.events_committed()
            for fn in self.after_commit:
                fn()

    async def _exit_pg(self, exc_type: Any) -> None:
        lazy = self._lazy
        assert lazy is not None
        try:
            if exc_type is not None:
                await lazy.rollback()
                return
            statements = lazy.pending + self._log_statements()
            lazy.pending = []
            try:
                chunks = _chunks(statements)
                if lazy.tx is None and len(chunks) <= 1:
                    for sql, params in (_combine(c) for c in chunks):
                        await lazy.raw.execute(to_pg(sql), *params)
                    return
                if lazy.tx is None:
                    # Too large for one statement (a big import): a transaction around several.
                    lazy.tx = lazy.raw.transaction()
                    await lazy.tx.start()
                for sql, params in (_combine(c) for c in chunks):
                    await lazy.raw.execute(to_pg(sql), *params)
                await lazy.tx.commit()
                lazy.tx = None
            except BaseException:
                await lazy.rollback()
                raise
        finally:
            await self._cm.__aexit__(None, None, None)

    def buffer(self, sql: str, params: list[Any]) -> None:
        """An INSERT that nothing in this unit of work reads back before commit."""
        if self._lazy is not None:
            self._lazy.buffer(sql, params)
        else:
            raise RuntimeError("buffer() is for PostgreSQL units of work; use conn.execute")

    async def write(self, sql: str, params: list[Any]) -> None:
        """Run an INSERT now on SQLite, or buffer it on PostgreSQL (see the class doc)."""
        if self._lazy is not None:
            self._lazy.buffer(sql, params)
        else:
            await self.conn.execute(sql, params)

    # -- audit and events ---------------------------------------------------
    def audit(self, app: str, resource: str, record_id: str | None, action: str,
              before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
        self._audit.append(AuditEntry(app, resource, record_id, action, before, after))

    async def notify(self, user_id: str, type: str, title: str, body: str = "", link: str | None = None,
                     data: dict[str, Any] | None = None) -> str | None:
        """Raise an in-app notification for a user of this org, committed with the change that
        caused it and pushed live over the WebSocket. Returns its id, or None when the user
        turned this type off. Nobody is notified of their own doing."""
        if user_id == self.ctx.user_id:
            return None
        pref = await self.conn.fetchval(
            "SELECT in_app FROM kernel_notification_pref WHERE org_id = ? AND user_id = ? AND type = ?",
            [self.ctx.org_id, user_id, type])
        if pref is not None and not pref:
            return None
        nid = new_id()
        db = self.db
        row = {"id": nid, "org_id": self.ctx.org_id, "user_id": user_id, "type": type, "title": title[:300],
               "body": body, "link": link, "data": data, "actor_id": self.ctx.user_id, "created_at": self.now,
               "read_at": None}
        await self.write(
            "INSERT INTO kernel_notification (id, org_id, user_id, type, title, body, link, data, actor_id,"
            " created_at, read_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [nid, self.ctx.org_id, user_id, type, title[:300], body, link, _json_param(db, data), self.ctx.user_id,
             db.ts(self.now), None])
        out = dict(row)
        out["created_at"] = db.ts(self.now) if self.dialect == "sqlite" else self.now
        self.emit("nexus.notifications.notification.created", nid, {"user_id": user_id, "notification": out})
        return nid

    def emit(self, type: str, subject: str | None, data: dict[str, Any]) -> None:
        self._events.append(Event(type, subject, data))
        self._had_events = True

    def _log_statements(self) -> list[tuple[str, list[Any]]]:
        db, ctx = self.db, self.ctx
        p = ctx.principal
        now = db.ts(self.now)
        out: list[tuple[str, list[Any]]] = []
        for a in self._audit:
            out.append((_AUDIT_SQL, [new_id(), p.org_id, now, p.user_id, p.kind, a.app, a.resource, a.record_id,
                                     a.action, _json_param(db, a.before), _json_param(db, a.after), ctx.request_id,
                                     ctx.client_addr]))
        for e in self._events:
            out.append((_OUTBOX_SQL, [new_id(), p.org_id, e.type, "/nexus/" + e.type.split(".")[1], e.subject, now,
                                      _json_param(db, e.data), p.user_id]))
        self._audit, self._events = [], []
        return out

    async def _flush(self) -> None:
        for sql, params in self._log_statements():
            await self.conn.execute(sql, params)

    # -- org-scoped data access ---------------------------------------------
    def _scope(self, spec: TableSpec) -> tuple[str, list[Any]]:
        if spec.tenant:
            return "org_id = ?", [self.ctx.org_id]
        return "1=1", []

    async def get(self, spec: TableSpec, record_id: str, *, include_deleted: bool = False,
                  for_update: bool = False) -> dict[str, Any] | None:
        where, params = self._scope(spec)
        sql = f"SELECT {spec.select_list} FROM {spec.name} WHERE {where} AND id = ?"
        if spec.soft_delete and not include_deleted:
            sql += " AND deleted_at IS NULL"
        if for_update and self.dialect == "postgresql":
            sql += " FOR UPDATE"
        row = await self.conn.fetchrow(sql, [*params, record_id])
        return None if row is None else spec.to_dict(self.dialect, row)

    async def require(self, spec: TableSpec, record_id: str, *, include_deleted: bool = False,
                      what: str = "record") -> dict[str, Any]:
        row = await self.get(spec, record_id, include_deleted=include_deleted, for_update=True)
        if row is None:
            raise not_found(what)
        return row

    async def find(self, spec: TableSpec, where: dict[str, Any] | None = None, *, order_by: str | None = None,
                   limit: int | None = None, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Equality lookups for domain logic; always within the caller's org."""
        clause, params = self._scope(spec)
        for k, v in (where or {}).items():
            if k not in spec.by_name:
                raise ValueError(f"{spec.name} has no column {k}")
            if v is None:
                clause += f" AND {k} IS NULL"
            else:
                clause += f" AND {k} = ?"
                params.append(spec.encode(self.db, k, v))
        if spec.soft_delete and not include_deleted:
            clause += " AND deleted_at IS NULL"
        sql = f"SELECT {spec.select_list} FROM {spec.name} WHERE {clause}"
        if order_by:
            desc = order_by.startswith("-")
            col = order_by.lstrip("-")
            if col not in spec.by_name:
                raise ValueError(f"{spec.name} has no column {col}")
            sql += f" ORDER BY {col} {'DESC' if desc else 'ASC'}, id ASC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = await self.conn.fetch(sql, params)
        return [spec.to_dict(self.dialect, r) for r in rows]

    async def insert(self, spec: TableSpec, values: dict[str, Any]) -> dict[str, Any]:
        """Insert with the record columns filled in; returns the stored row as the API shows it."""
        now = self.now
        row = dict(values)
        row.setdefault("id", new_id())
        if spec.tenant:
            row["org_id"] = self.ctx.org_id
        if spec.has("created_at"):
            row["created_at"] = now
            row["updated_at"] = now
        if spec.has("created_by"):
            row["created_by"] = self.ctx.user_id
            row["updated_by"] = self.ctx.user_id
        if spec.has("version"):
            row["version"] = 1
        for name, default in spec.defaults.items():
            if name not in row:
                row[name] = default.arg(None) if default.is_callable else default.arg
        for name in spec.all_names:
            row.setdefault(name, None)
        cols = spec.all_names
        unknown = set(row) - set(spec.by_name)
        if unknown:
            raise ValueError(f"{spec.name} has no columns {sorted(unknown)}")
        sql = f"INSERT INTO {spec.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        await self.write(sql, [spec.encode(self.db, c, row[c]) for c in cols])
        return self._as_output(spec, {n: row[n] for n in spec.names})

    async def insert_many(self, spec: TableSpec, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            out.append(await self.insert(spec, r))
        return out

    async def update(self, spec: TableSpec, record_id: str, changes: dict[str, Any], *,
                     expected_version: int | None = None, include_deleted: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """Apply changes to one record; returns (before, after). 412 when the version moved on."""
        before = await self.require(spec, record_id, include_deleted=include_deleted)
        if expected_version is not None and spec.has("version") and before["version"] != expected_version:
            raise Problem(412, "The record was changed by someone else; reload it and try again.",
                          extra={"current_version": before["version"]})
        values = {k: v for k, v in changes.items() if k in spec.by_name}
        if spec.has("updated_at"):
            values["updated_at"] = self.now
        if spec.has("updated_by"):
            values["updated_by"] = self.ctx.user_id
        sets = [f"{k} = ?" for k in values]
        params = [spec.encode(self.db, k, v) for k, v in values.items()]
        where, wparams = self._scope(spec)
        sql = f"UPDATE {spec.name} SET {', '.join(sets)}"
        if spec.has("version"):
            sql += ", version = version + 1"
        sql += f" WHERE {where} AND id = ?"
        params += [*wparams, record_id]
        if spec.has("version"):
            sql += " AND version = ?"
            params.append(before["version"])
        if await self.conn.execute(sql, params) != 1:
            raise Problem(412, "The record was changed by someone else; reload it and try again.")
        after = dict(before)
        after.update(self._as_output(spec, {k: v for k, v in values.items() if k not in spec.hidden}))
        if spec.has("version"):
            after["version"] = before["version"] + 1
        return before, after

    async def delete_rows(self, spec: TableSpec, where: dict[str, Any]) -> int:
        """Hard delete (for link tables and dependent rows without history of their own)."""
        clause, params = self._scope(spec)
        for k, v in where.items():
            clause += f" AND {k} = ?"
            params.append(spec.encode(self.db, k, v))
        return await self.conn.execute(f"DELETE FROM {spec.name} WHERE {clause}", params)

    async def exists(self, spec: TableSpec, record_id: str) -> bool:
        where, params = self._scope(spec)
        sql = f"SELECT 1 FROM {spec.name} WHERE {where} AND id = ?"
        if spec.soft_delete:
            sql += " AND deleted_at IS NULL"
        return await self.conn.fetchval(sql, [*params, record_id]) is not None

    def _as_output(self, spec: TableSpec, values: dict[str, Any]) -> dict[str, Any]:
        """Values as a read would return them, so responses match GET exactly."""
        out: dict[str, Any] = {}
        for k, v in values.items():
            c = spec.by_name[k]
            if v is None:
                out[k] = None
            elif c.kind == "ts" and self.dialect == "sqlite":
                out[k] = self.db.ts(v)
            elif c.kind == "decimal":
                out[k] = _decimal_formatter(c.scale)(v)
            elif c.kind == "date":
                out[k] = v.isoformat() if isinstance(v, date) else v
            else:
                out[k] = v
        return out


_AUDIT_SQL = (
    "INSERT INTO kernel_audit (id, org_id, at, actor_id, actor_kind, app, resource, record_id, action,"
    " before, after, request_id, client_addr) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_OUTBOX_SQL = (
    "INSERT INTO kernel_outbox (id, org_id, type, source, subject, time, data, actor_id) VALUES (?,?,?,?,?,?,?,?)"
)


MAX_PARAMS = 30_000  # PostgreSQL allows 32 767 bind parameters in one statement


def _chunks(statements: list[tuple[str, list[Any]]]) -> list[list[tuple[str, list[Any]]]]:
    """Group buffered statements so no combined statement exceeds MAX_PARAMS parameters."""
    out: list[list[tuple[str, list[Any]]]] = []
    size = 0
    for st in statements:
        if not out or size + len(st[1]) > MAX_PARAMS:
            out.append([])
            size = 0
        out[-1].append(st)
        size += len(st[1])
    return out


def _combine(statements: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """Several INSERTs as one PostgreSQL statement: all happen, atomically, or none."""
    if len(statements) == 1:
        return statements[0]
    parts = [f"w{i} AS ({sql})" for i, (sql, _) in enumerate(statements[:-1])]
    sql = "WITH " + ", ".join(parts) + " " + statements[-1][0]
    params: list[Any] = []
    for _, p in statements:
        params.extend(p)
    return sql, params


class _LazyPgConn:
    """A pooled asyncpg connection whose transaction begins at the first write."""

    dialect = "postgresql"

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.tx: Any = None
        self.pending: list[tuple[str, list[Any]]] = []

    def buffer(self, sql: str, params: list[Any]) -> None:
        self.pending.append((sql, params))

    async def begin(self) -> None:
        if self.tx is None:
            self.tx = self.raw.transaction()
            await self.tx.start()
        if self.pending:
            pending, self.pending = self.pending, []
            for chunk in _chunks(pending):
                sql, params = _combine(chunk)
                await self.raw.execute(to_pg(sql), *params)

    async def rollback(self) -> None:
        self.pending = []
        if self.tx is not None:
            tx, self.tx = self.tx, None
            await tx.rollback()

    async def _read_ready(self, sql: str) -> None:
        if self.pending or (self.tx is None and " FOR UPDATE" in sql):
            await self.begin()

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        await self._read_ready(sql)
        return await self.raw.fetch(to_pg(sql), *params)  # type: ignore[no-any-return]

    async def fetchrow(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        await self._read_ready(sql)
        return await self.raw.fetchrow(to_pg(sql), *params)  # type: ignore[no-any-return]

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        await self._read_ready(sql)
        return await self.raw.fetchval(to_pg(sql), *params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        await self.begin()
        status: str = await self.raw.execute(to_pg(sql), *params)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Any) -> None:
        await self.begin()
        await self.raw.executemany(to_pg(sql), list(rows))


def _json_param(db: Database, value: Any) -> Any:
    if value is None:
        return None
    if db.dialect == "sqlite":
        return dumps(value).decode()
    return loads(dumps(value))


def ordered(spec: TableSpec, row: dict[str, Any]) -> dict[str, Any]:
    return {n: row.get(n) for n in spec.names}


def coerce_decimal(v: Any) -> Decimal:
    return v if isinstance(v, Decimal) else Decimal(str(v))

