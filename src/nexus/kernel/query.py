"""List queries from URL parameters: typed filters, keyset pagination, sorting, text match.

Every value becomes a bound parameter; every column name is checked against the
resource's declared filterable/sortable fields before it reaches SQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import orjson

from nexus.kernel.errors import Problem, bad_request
from nexus.kernel.jsonutil import parse_dt

if TYPE_CHECKING:
    from nexus.kernel.db import Database
    from nexus.kernel.records import TableSpec

RESERVED = frozenset({"limit", "cursor", "sort", "q", "view", "deleted", "format", "mode", "dry_run", "mapping"})
OPS_BY_KIND = {
    "str": ("eq", "ne", "in", "nin", "isnull", "startswith"),
    "int": ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "isnull"),
    "float": ("eq", "ne", "gt", "gte", "lt", "lte", "isnull"),
    "decimal": ("eq", "ne", "gt", "gte", "lt", "lte", "isnull"),
    "ts": ("eq", "gt", "gte", "lt", "lte", "isnull"),
    "date": ("eq", "ne", "gt", "gte", "lt", "lte", "isnull"),
    "bool": ("eq", "isnull"),
    "json": ("contains", "isnull"),
}
_SQL_OP = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
MAX_LIMIT = 500
MAX_IN = 100


@dataclass
class ListQuery:
    where: list[str]
    params: list[Any]
    sort: list[tuple[str, bool]]  # (column, descending)
    limit: int
    after: list[Any] | None  # keyset values of the last row seen, id last
    fingerprint: str


def coerce(db: Database, kind: str, raw: str, field: str) -> Any:
    """One URL value to a driver parameter of the column's type, or a 400 naming the field."""
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "decimal":
            d = Decimal(raw)
            if not d.is_finite():
                raise ValueError
            return str(d) if db.dialect == "sqlite" else d
        if kind == "bool":
            low = raw.lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError
        if kind == "ts":
            return db.ts(parse_dt(raw))
        if kind == "date":
            d2 = date.fromisoformat(raw)
            return d2.isoformat() if db.dialect == "sqlite" else d2
        if len(raw) > 1000:
            raise ValueError
        return raw
    except (ValueError, InvalidOperation, OverflowError):
        raise bad_request(f"{raw[:100]!r} is not a valid {kind_name(kind)} for filter {field!r}.",
                          pointer=f"/query/{field}") from None


def kind_name(kind: str) -> str:
    return {"str": "string", "int": "integer", "float": "number", "decimal": "decimal number",
            "ts": "RFC 3339 date-time", "date": "date (YYYY-MM-DD)", "bool": "boolean", "json": "value"}[kind]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"nexus-cursor\x00" + secret.encode()).digest()

    def encode(self, fingerprint: str, values: list[Any]) -> str:
        payload = base64.urlsafe_b64encode(orjson.dumps([fingerprint, values], default=str)).rstrip(b"=")
        sig = base64.urlsafe_b64encode(hmac.digest(self._key, payload, "sha256")[:12]).rstrip(b"=")
        return (payload + b"." + sig).decode()

    def decode(self, cursor: str, fingerprint: str) -> list[Any]:
        try:
            payload, _, sig = cursor.encode("ascii").partition(b".")
            want = base64.urlsafe_b64encode(hmac.digest(self._key, payload, "sha256")[:12]).rstrip(b"=")
            if not hmac.compare_digest(want, sig):
                raise ValueError("signature")
            fp, values = orjson.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
        except (ValueError, UnicodeError, TypeError):
            raise bad_request("The cursor is invalid; start again without one.", pointer="/query/cursor") from None
        if fp != fingerprint:
            raise bad_request("The cursor belongs to another query (different sort or filters); start again "
                              "without one.", pointer="/query/cursor")
        if not isinstance(values, list):
            raise bad_request("The cursor is invalid; start again without one.", pointer="/query/cursor")
        return values


def parse_list_query(
    db: Database,
    spec: TableSpec,
    params: Mapping[str, list[str]],
    *,
    filters: tuple[str, ...],
    sorts: tuple[str, ...],
    search: tuple[str, ...],
    default_sort: str,
    cursors: CursorCodec,
    extra_where: list[tuple[str, list[Any]]] | None = None,
    allow: frozenset[str] = RESERVED,
    custom: Mapping[str, dict[str, Any]] | None = None,
) -> ListQuery:
    where: list[str] = []
    args: list[Any] = []
    fp_parts: list[str] = []
    for key in sorted(params):
        values = params[key]
        if key in allow:
            if len(values) > 1:
                raise bad_request(f"Parameter {key!r} is given more than once.", pointer=f"/query/{key}")
            continue
        name, op = key, "eq"
        if key.endswith("]") and "[" in key:
            name, _, op = key[:-1].partition("[")
        if name.startswith("custom.") and custom is not None:
            # An org's custom field (kernel/customfields.py): a typed condition on the JSON column.
            from nexus.kernel.customfields import filter_sql

            d = custom.get(name[7:])
            if d is None:
                raise bad_request(f"{name!r} is not a custom field of this list. Custom fields: "
                                  f"{', '.join('custom.' + n for n in custom) or 'none'}.", pointer=f"/query/{key}")
            for raw in values:
                fp_parts.append(f"{key}={raw}")
                clause, cargs = filter_sql(db, spec.name, d, op, raw, key)
                where.append(clause)
                args.extend(cargs)
            continue
        if name not in filters:
            raise bad_request(
                f"{name!r} is not a filter of this list. Filters: {', '.join(filters) or 'none'}.",
                pointer=f"/query/{key}",
            )
        kind = spec.by_name[name].kind
        ops = OPS_BY_KIND[kind]
        if kind == "json" and op == "eq":
            op = "contains"
        if op not in ops:
            raise bad_request(f"Operator {op!r} does not apply to {name!r}; use one of {', '.join(ops)}.",
                              pointer=f"/query/{key}")
        for raw in values:
            fp_parts.append(f"{key}={raw}")
            if op == "isnull":
                flag = coerce(db, "bool", raw, name)
                where.append(f"{name} IS NULL" if flag else f"{name} IS NOT NULL")
            elif op in ("in", "nin"):
                items = [v for v in raw.split(",") if v != ""]
                if not items or len(items) > MAX_IN:
                    raise bad_request(f"{key} takes 1 to {MAX_IN} comma-separated values.", pointer=f"/query/{key}")
                marks = ",".join("?" * len(items))
                where.append(f"{name} {'IN' if op == 'in' else 'NOT IN'} ({marks})")
                args.extend(coerce(db, kind, v, name) for v in items)
            elif op == "contains":
                if db.dialect == "sqlite":
                    where.append(f"EXISTS (SELECT 1 FROM json_each({spec.name}.{name}) WHERE value = ?)")
                    args.append(raw)
                else:
                    where.append(f"{name} @> ?::jsonb")
                    args.append([raw])  # the jsonb codec encodes it
            elif op == "startswith":
                where.append(f"{name} LIKE ? ESCAPE '\\'")
                args.append(_like_escape(coerce(db, kind, raw, name)) + "%")
            else:
                where.append(f"{name} {_SQL_OP[op]} ?")
                args.append(coerce(db, kind, raw, name))
    q = _single(params, "q")
    if q is not None:
        q = q.strip()
        if len(q) > 200:
            raise bad_request("q is limited to 200 characters.", pointer="/query/q")
        if q and search:
            fp_parts.append(f"q={q}")
            like = "%" + _like_escape(q.lower()) + "%"
            op = "LIKE" if db.dialect == "sqlite" else "ILIKE"
            where.append("(" + " OR ".join(f"lower({c}) {op} ? ESCAPE '\\'" for c in search) + ")")
            args.extend([like] * len(search))
        elif q and not search:
            raise bad_request("This list has no full-text fields.", pointer="/query/q")
    for sql, extra in extra_where or ():
        where.append(sql)
        args.extend(extra)
    sort_raw = _single(params, "sort") or default_sort
    sort: list[tuple[str, bool]] = []
    for part in sort_raw.split(","):
        part = part.strip()
        desc = part.startswith("-")
        col = part.lstrip("-+")
        if col not in sorts:
            raise bad_request(f"Cannot sort by {col!r}. Sortable: {', '.join(sorts)}.", pointer="/query/sort")
        if any(c == col for c, _ in sort):
            raise bad_request(f"{col!r} appears twice in sort.", pointer="/query/sort")
        sort.append((col, desc))
    if len(sort) > 3:
        raise bad_request("Sort by at most three fields.", pointer="/query/sort")
    limit_raw = _single(params, "limit")
    limit = 50
    if limit_raw is not None:
        try:
            limit = int(limit_raw)
        except ValueError:
            raise bad_request("limit must be an integer from 1 to 500.", pointer="/query/limit") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise bad_request("limit must be an integer from 1 to 500.", pointer="/query/limit")
    fingerprint = hashlib.sha256(("|".join(fp_parts) + "#" + sort_raw).encode()).hexdigest()[:16]
    after = None
    cursor = _single(params, "cursor")
    if cursor:
        after = cursors.decode(cursor, fingerprint)
        if len(after) != len(sort) + 1:
            raise bad_request("The cursor is invalid; start again without one.", pointer="/query/cursor")
        after = [
            None if v is None else (coerce(db, spec.by_name[c].kind, str(v), c) if spec.by_name[c].kind != "str" else v)
            for (c, _), v in zip(sort, after[:-1], strict=True)
        ] + [after[-1]]
    return ListQuery(where, args, sort, limit, after, fingerprint)


def _single(params: Mapping[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    if not values:
        return None
    return values[0]


def keyset_clause(spec: TableSpec, sort: list[tuple[str, bool]], after: list[Any]) -> tuple[str, list[Any]]:
    """Rows strictly after `after` in ORDER BY col [DESC] NULLS LAST, ..., id ASC."""

    def build(i: int) -> tuple[str, list[Any]]:
        if i == len(sort):
            return "id > ?", [after[-1]]
        col, desc = sort[i]
        value = after[i]
        rest, rest_args = build(i + 1)
        nullable = spec.by_name[col].nullable
        if value is None:
            return f"({col} IS NULL AND {rest})", rest_args
        cmp = "<" if desc else ">"
        parts = [f"{col} {cmp} ?"]
        args: list[Any] = [value]
        if nullable:
            parts.append(f"{col} IS NULL")
        parts.append(f"({col} = ? AND {rest})")
        args += [value, *rest_args]
        return "(" + " OR ".join(parts) + ")", args

    return build(0)


def order_by(sort: list[tuple[str, bool]]) -> str:
    return ", ".join(f"{c} {'DESC' if d else 'ASC'} NULLS LAST" for c, d in sort) + ", id ASC"


def cursor_values(row: dict[str, Any], sort: list[tuple[str, bool]]) -> list[Any]:
    return [row[c] for c, _ in sort] + [row["id"]]


def problem_if_too_many(count: int, limit: int, what: str) -> None:
    if count > limit:
        raise Problem(413, f"At most {limit} {what} per request.")


async def fetch_page(db: Database, cursors: CursorCodec, spec: TableSpec, org_id: str,
                     params: Mapping[str, list[str]], *, filters: tuple[str, ...], sorts: tuple[str, ...],
                     default_sort: str) -> dict[str, Any]:
    """One page of an org's rows of a kernel table ({"items", "next_cursor"}), with the same
    typed filters, sorting and signed keyset cursors as the declared resources."""
    lq = parse_list_query(db, spec, params, filters=filters, sorts=sorts, search=(),
                          default_sort=default_sort, cursors=cursors)
    sql = f"SELECT {spec.select_list} FROM {spec.name} WHERE org_id = ?"
    args: list[Any] = [org_id, *lq.params]
    for w in lq.where:
        sql += " AND " + w
    if lq.after is not None:
        clause, cargs = keyset_clause(spec, lq.sort, lq.after)
        sql += " AND " + clause
        args += cargs
    sql += " ORDER BY " + order_by(lq.sort) + " LIMIT ?"
    args.append(lq.limit + 1)
    async with db.reader() as conn:
        rows = await conn.fetch(sql, args)
    items = [spec.to_output(db.dialect, r) for r in rows[: lq.limit]]
    nxt = cursors.encode(lq.fingerprint, cursor_values(items[-1], lq.sort)) if len(rows) > lq.limit else None
    return {"items": items, "next_cursor": nxt}
