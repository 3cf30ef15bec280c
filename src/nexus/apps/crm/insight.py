"""Read models for people deciding: the pipeline board, the forecast, the reports and the
record timelines. Each is a few indexed, grouped queries (see docs/performance.md for their
speed on 100 000 deals and 500 000 activities); money is summed per currency in SQL and
converted to the org currency here, from the stored rates."""

from __future__ import annotations

import bisect
import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nexus.kernel.errors import bad_request
from nexus.kernel.jsonutil import utcnow

from .resources import deals
from .rules import money, period_of, period_range

if TYPE_CHECKING:
    from nexus.kernel.db import Conn, Database
    from nexus.kernel.query import CursorCodec

ZERO = Decimal("0")
MAX_COLUMN = 100


def _dec(v: Any) -> Decimal:
    if v is None:
        return ZERO
    return v if isinstance(v, Decimal) else Decimal(str(v))


def _day(v: Any) -> date:
    if isinstance(v, datetime):
        return v.astimezone(UTC).date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


# -- currency ----------------------------------------------------------------------------------


@dataclass
class Rates:
    """The org currency and its stored rates: `rate` org units buy one unit of a currency,
    from `valid_from` on (the latest rate valid on a day applies)."""

    currency: str
    table: dict[str, tuple[list[date], list[Decimal]]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    def convert(self, amount: Decimal, currency: str, on: date | None = None) -> Decimal | None:
        if currency == self.currency:
            return amount
        got = self.table.get(currency)
        if got is None:
            self.missing.add(currency)
            return None
        days, values = got
        i = bisect.bisect_right(days, on or date.max) - 1
        if i < 0:
            i = 0  # before the first stored rate: the earliest one is the best estimate
        return amount * values[i]


async def load_rates(conn: Conn, org_id: str) -> Rates:
    row = await conn.fetchrow("SELECT currency FROM crm_settings WHERE org_id = ? AND deleted_at IS NULL"
                              " ORDER BY created_at LIMIT 1", [org_id])
    rates = Rates(str(row[0]) if row else "USD")
    rows = await conn.fetch("SELECT currency, valid_from, rate FROM crm_exchange_rate WHERE org_id = ?"
                            " AND deleted_at IS NULL ORDER BY currency, valid_from, created_at", [org_id])
    for cur, valid_from, rate in rows:
        days, values = rates.table.setdefault(cur, ([], []))
        d = _day(valid_from)
        if days and days[-1] == d:
            values[-1] = _dec(rate)  # the later entry for the same day wins
        else:
            days.append(d)
            values.append(_dec(rate))
    return rates


# -- the pipeline board ------------------------------------------------------------------------------


def _card_sql(owner: bool) -> str:
    spec = deals.spec
    sql = (f"SELECT {spec.select_list} FROM crm_deal WHERE org_id = ? AND stage_id = ? AND deleted_at IS NULL"
           + (" AND owner_id = ?" if owner else ""))
    return sql


async def name_cards(conn: Conn, org_id: str, cards: list[dict[str, Any]], users_table: str | None) -> None:
    """Add `company_name` and `owner_name` to each card: one round trip for the whole page
    (a UNION of two `IN` look-ups), so the board needs no request per company or user."""
    company_ids = sorted({c["company_id"] for c in cards if c.get("company_id")})
    owner_ids = sorted({c["owner_id"] for c in cards if c.get("owner_id")}) if users_table else []
    names: dict[tuple[str, str], str] = {}
    parts: list[str] = []
    args: list[Any] = []
    if company_ids:
        parts.append("SELECT 'c', id, name FROM crm_company WHERE org_id = ? AND deleted_at IS NULL"
                     f" AND id IN ({','.join('?' * len(company_ids))})")
        args += [org_id, *company_ids]
    if owner_ids:
        parts.append(f"SELECT 'u', id, name FROM {users_table} WHERE org_id = ? AND deleted_at IS NULL"
                     f" AND id IN ({','.join('?' * len(owner_ids))})")
        args += [org_id, *owner_ids]
    if parts:
        for kind, rid, name in await conn.fetch(" UNION ALL ".join(parts), args):
            names[(kind, rid)] = name
    for c in cards:
        c["company_name"] = names.get(("c", c["company_id"])) if c.get("company_id") else None
        c["owner_name"] = names.get(("u", c["owner_id"])) if c.get("owner_id") else None


async def board(db: Database, cursors: CursorCodec, org_id: str, pipeline: dict[str, Any],
                stages: list[dict[str, Any]], limit: int, owner_id: str | None,
                users_table: str | None = None) -> dict[str, Any]:
    """Every stage of a pipeline as a column: count and totals (in the org currency, and per
    currency), the first `limit` cards (most recently moved or edited first) and a cursor for
    the column's next page."""
    extra = [owner_id] if owner_id else []
    async with db.reader() as conn:
        rates = await load_rates(conn, org_id)
        totals = await conn.fetch(
            "SELECT stage_id, currency, count(*), sum(amount), sum(amount * probability) FROM crm_deal"
            " WHERE org_id = ? AND pipeline_id = ? AND deleted_at IS NULL" + (" AND owner_id = ?" if owner_id else "")
            + " GROUP BY stage_id, currency", [org_id, pipeline["id"], *extra])
        cards: dict[str, list[dict[str, Any]]] = {}
        if stages:
            # One round trip for every column's first page, each from the board index.
            part = f"SELECT * FROM ({_card_sql(bool(owner_id))} ORDER BY updated_at DESC, id DESC LIMIT ?) AS c{{}}"
            sql = " UNION ALL ".join(part.format(i) for i in range(len(stages)))
            args: list[Any] = []
            for s in stages:
                args += [org_id, s["id"], *extra, limit + 1]
            for row in await conn.fetch(sql, args):
                rec = deals.spec.to_output(db.dialect, row)
                cards.setdefault(rec["stage_id"], []).append(rec)
            await name_cards(conn, org_id, [c for col in cards.values() for c in col], users_table)
    by_stage: dict[str, list[tuple[str, int, Decimal, Decimal]]] = defaultdict(list)
    for stage_id, cur, count, amount, weighted in totals:
        by_stage[stage_id].append((cur, int(count), _dec(amount), _dec(weighted) / 100))
    today = utcnow().date()
    columns = []
    for s in stages:
        # UNION ALL keeps no promise about order across its parts: each column is sorted here.
        items = sorted(cards.get(s["id"], []), key=lambda d: (d["updated_at"], d["id"]), reverse=True)
        nxt = None
        if len(items) > limit:
            items = items[:limit]
            nxt = cursors.encode(_column_fp(s["id"], owner_id), [items[-1]["updated_at"], items[-1]["id"]])
        count, total, weighted = 0, ZERO, ZERO
        per_currency = []
        for cur, n, amount, w in sorted(by_stage.get(s["id"], [])):
            count += n
            conv, convw = rates.convert(amount, cur, today), rates.convert(w, cur, today)
            total += conv or ZERO
            weighted += convw or ZERO
            per_currency.append({"currency": cur, "count": n, "amount": money(amount), "weighted": money(w)})
        columns.append({
            "stage": {k: s[k] for k in ("id", "name", "position", "probability", "kind")},
            "count": count, "total": money(total), "weighted": money(weighted),
            "by_currency": per_currency, "items": items, "next_cursor": nxt,
        })
    return {"pipeline": {"id": pipeline["id"], "name": pipeline["name"]}, "currency": rates.currency,
            "owner_id": owner_id, "columns": columns, "unconverted": sorted(rates.missing)}


def _column_fp(stage_id: str, owner_id: str | None) -> str:
    return f"board:{stage_id}:{owner_id or ''}"


async def column_page(db: Database, cursors: CursorCodec, org_id: str, stage_id: str, limit: int,
                      owner_id: str | None, cursor: str | None, users_table: str | None = None) -> dict[str, Any]:
    """One more page of a board column, after the cursor the board (or the last page) gave."""
    sql = _card_sql(bool(owner_id))
    args: list[Any] = [org_id, stage_id, *([owner_id] if owner_id else [])]
    if cursor:
        after = cursors.decode(cursor, _column_fp(stage_id, owner_id))
        if len(after) != 2 or not all(isinstance(v, str) for v in after):
            raise bad_request("The cursor is invalid; start again without one.", pointer="/query/cursor")
        sql += " AND (updated_at < ? OR (updated_at = ? AND id < ?))"
        moment = db.ts(db.read_ts(after[0]))
        args += [moment, moment, after[1]]
    sql += " ORDER BY updated_at DESC, id DESC LIMIT ?"
    args.append(limit + 1)
    async with db.reader() as conn:
        rows = await conn.fetch(sql, args)
        items = [deals.spec.to_output(db.dialect, r) for r in rows[:limit]]
        await name_cards(conn, org_id, items, users_table)
    nxt = cursors.encode(_column_fp(stage_id, owner_id), [items[-1]["updated_at"], items[-1]["id"]]) \
        if len(rows) > limit else None
    return {"items": items, "next_cursor": nxt}


# -- the forecast -------------------------------------------------------------------------------------


GROUPS = ("owner", "pipeline")


async def forecast(db: Database, org_id: str, *, period: str, start: date, end: date, group_by: tuple[str, ...],
                   pipeline_id: str | None, owner_id: str | None) -> dict[str, Any]:
    """Open deals by expected close date and won deals by close date, per period (and owner,
    pipeline): pipeline = open amount, weighted = Σ amount × probability, committed = won +
    open deals their owner committed; all in the org currency."""
    # Month keys computed in SQL; only the dimensions asked for are grouped (fewer groups: a hash
    # aggregate instead of a sort), and committed money is a conditional sum, not a group.
    month = ("substr(expected_close_date, 1, 7)" if db.dialect == "sqlite"
             else "date_trunc('month', expected_close_date)::date")
    closed_month = ("substr(closed_at, 1, 7)" if db.dialect == "sqlite"
                    else "date_trunc('month', closed_at AT TIME ZONE 'UTC')::date")
    owner_col = "owner_id" if "owner" in group_by else "NULL"
    pipe_col = "pipeline_id" if "pipeline" in group_by else "NULL"
    dims = "".join(f", {c}" for c in ("owner_id", "pipeline_id") if (c == "owner_id" and "owner" in group_by)
                   or (c == "pipeline_id" and "pipeline" in group_by))
    cond, args = "", []
    if pipeline_id:
        cond += " AND pipeline_id = ?"
        args.append(pipeline_id)
    if owner_id:
        cond += " AND owner_id = ?"
        args.append(owner_id)
    d0, d1 = (start.isoformat(), end.isoformat()) if db.dialect == "sqlite" else (start, end)
    t0 = db.ts(datetime(start.year, start.month, start.day, tzinfo=UTC))
    t1 = db.ts(datetime.fromordinal(end.toordinal() + 1).replace(tzinfo=UTC))
    async with db.reader() as conn:
        rates = await load_rates(conn, org_id)
        fy_row = await conn.fetchrow("SELECT fiscal_year_start_month FROM crm_settings WHERE org_id = ?"
                                     " AND deleted_at IS NULL ORDER BY created_at LIMIT 1", [org_id])
        open_rows = await conn.fetch(
            f"SELECT {month}, {owner_col}, {pipe_col}, currency, count(*), sum(amount), sum(amount * probability),"
            " sum(CASE WHEN committed THEN amount ELSE 0 END) FROM crm_deal WHERE org_id = ? AND deleted_at IS NULL"
            f" AND status = 'open' AND expected_close_date >= ? AND expected_close_date <= ?{cond}"
            f" GROUP BY {month}{dims}, currency", [org_id, d0, d1, *args])
        won_rows = await conn.fetch(
            f"SELECT {closed_month}, {owner_col}, {pipe_col}, currency, count(*), sum(amount) FROM crm_deal"
            f" WHERE org_id = ? AND deleted_at IS NULL AND status = 'won' AND closed_at >= ? AND closed_at < ?{cond}"
            f" GROUP BY {closed_month}{dims}, currency", [org_id, t0, t1, *args])
    fiscal = int(fy_row[0]) if fy_row else 1

    def key(ym: Any, owner: Any, pipe: Any) -> tuple[str, str | None, str | None]:
        y, m = (ym.year, ym.month) if isinstance(ym, date) else (int(ym[:4]), int(ym[5:7]))
        p = period_of(date(y, m, 1), period, fiscal)
        return (p, owner if "owner" in group_by else None, pipe if "pipeline" in group_by else None)

    acc: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}

    def bucket(k: tuple[str, str | None, str | None]) -> dict[str, Any]:
        b = acc.get(k)
        if b is None:
            b = acc[k] = {"open_count": 0, "pipeline": ZERO, "weighted": ZERO, "committed": ZERO,
                          "won_count": 0, "won": ZERO}
        return b

    def on(label: str) -> date:
        return min(period_range(label, fiscal)[1], utcnow().date())

    for ym, owner, pipe, cur, n, amount, weighted, committed in open_rows:
        k = key(ym, owner, pipe)
        b = bucket(k)
        a = rates.convert(_dec(amount), cur, on(k[0]))
        w = rates.convert(_dec(weighted) / 100, cur, on(k[0]))
        c = rates.convert(_dec(committed), cur, on(k[0]))
        b["open_count"] += int(n)
        b["pipeline"] += a or ZERO
        b["weighted"] += w or ZERO
        b["committed"] += c or ZERO
    for ym, owner, pipe, cur, n, amount in won_rows:
        k = key(ym, owner, pipe)
        b = bucket(k)
        a = rates.convert(_dec(amount), cur, on(k[0]))
        b["won_count"] += int(n)
        b["won"] += a or ZERO
        b["committed"] += a or ZERO
    rows = []
    totals = {"open_count": 0, "pipeline": ZERO, "weighted": ZERO, "committed": ZERO, "won_count": 0, "won": ZERO}
    for (p, owner, pipe), b in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2] or "")):
        row: dict[str, Any] = {"period": p}
        first, last = period_range(p, fiscal)
        row["start"], row["end"] = first.isoformat(), last.isoformat()
        if "owner" in group_by:
            row["owner_id"] = owner
        if "pipeline" in group_by:
            row["pipeline_id"] = pipe
        for k2, v in b.items():
            totals[k2] += v
            row[k2] = money(v) if isinstance(v, Decimal) else v
        rows.append(row)
    return {"currency": rates.currency, "period": period, "from": start.isoformat(), "to": end.isoformat(),
            "group_by": list(group_by), "rows": rows,
            "totals": {k: money(v) if isinstance(v, Decimal) else v for k, v in totals.items()},
            "unconverted": sorted(rates.missing)}


def default_range(period: str, today: date, fiscal: int = 1) -> tuple[date, date]:
    """The current period and the three after it."""
    first = period_range(period_of(today, period, fiscal), fiscal)[0]
    end = first
    for _ in range(4):
        end = period_range(period_of(end, period, fiscal), fiscal)[1]
        end = date.fromordinal(end.toordinal() + 1)
    return first, date.fromordinal(end.toordinal() - 1)


# -- reports ---------------------------------------------------------------------------------------------


async def pipeline_report(db: Database, org_id: str, pipeline: dict[str, Any], stages: list[dict[str, Any]]
                          ) -> dict[str, Any]:
    async with db.reader() as conn:
        rates = await load_rates(conn, org_id)
        rows = await conn.fetch(
            "SELECT stage_id, currency, count(*), sum(amount), sum(amount * probability) FROM crm_deal"
            " WHERE org_id = ? AND pipeline_id = ? AND deleted_at IS NULL GROUP BY stage_id, currency",
            [org_id, pipeline["id"]])
    agg: dict[str, list[Any]] = {s["id"]: [0, ZERO, ZERO] for s in stages}
    today = utcnow().date()
    for stage_id, cur, n, amount, weighted in rows:
        if stage_id not in agg:
            continue
        agg[stage_id][0] += int(n)
        agg[stage_id][1] += rates.convert(_dec(amount), cur, today) or ZERO
        agg[stage_id][2] += rates.convert(_dec(weighted) / 100, cur, today) or ZERO
    out = [{"stage_id": s["id"], "stage": s["name"], "kind": s["kind"], "position": s["position"],
            "deals": agg[s["id"]][0], "amount": money(agg[s["id"]][1]), "weighted": money(agg[s["id"]][2])}
           for s in stages]
    return {"currency": rates.currency, "pipeline_id": pipeline["id"], "rows": out,
            "unconverted": sorted(rates.missing)}


async def conversion_report(db: Database, org_id: str, pipeline: dict[str, Any], stages: list[dict[str, Any]],
                            start: date, end: date) -> dict[str, Any]:
    """For deals created in the range: how many reached each open stage (or went past it),
    and what share of those moved on — to a later stage or to won."""
    t0 = db.ts(datetime(start.year, start.month, start.day, tzinfo=UTC))
    t1 = db.ts(datetime.fromordinal(end.toordinal() + 1).replace(tzinfo=UTC))
    async with db.reader() as conn:
        rows = await conn.fetch(
            "SELECT h.deal_id, h.stage_id FROM crm_stage_history h JOIN crm_deal d ON d.id = h.deal_id"
            " AND d.org_id = h.org_id WHERE h.org_id = ? AND h.pipeline_id = ? AND d.deleted_at IS NULL"
            " AND d.created_at >= ? AND d.created_at < ?", [org_id, pipeline["id"], t0, t1])
    by_id = {s["id"]: s for s in stages}
    opens = [s for s in stages if s["kind"] == "open"]
    reached: dict[str, int] = {}  # deal -> highest open position reached (won: past every one)
    top = max((s["position"] for s in opens), default=0) + 1
    for deal_id, stage_id in rows:
        s = by_id.get(stage_id)
        if s is None or s["kind"] == "lost":
            reached.setdefault(deal_id, -1)
            continue
        pos = top if s["kind"] == "won" else s["position"]
        reached[deal_id] = max(reached.get(deal_id, -1), pos)
    out = []
    for i, s in enumerate(opens):
        entered = sum(1 for p in reached.values() if p >= s["position"])
        nxt = opens[i + 1]["position"] if i + 1 < len(opens) else top
        moved = sum(1 for p in reached.values() if p >= nxt)
        out.append({"stage_id": s["id"], "stage": s["name"], "entered": entered, "advanced": moved,
                    "to": opens[i + 1]["name"] if i + 1 < len(opens) else "won",
                    "conversion_rate": round(moved / entered, 4) if entered else None})
    return {"pipeline_id": pipeline["id"], "from": start.isoformat(), "to": end.isoformat(), "rows": out}


async def win_report(db: Database, org_id: str, start: date, end: date) -> dict[str, Any]:
    """Per owner, deals closed in the range: won, lost, win rate, average sales cycle (days
    from creation to won)."""
    t0 = db.ts(datetime(start.year, start.month, start.day, tzinfo=UTC))
    t1 = db.ts(datetime.fromordinal(end.toordinal() + 1).replace(tzinfo=UTC))
    async with db.reader() as conn:
        rows = await conn.fetch(
            "SELECT owner_id, status, created_at, closed_at FROM crm_deal WHERE org_id = ? AND deleted_at IS NULL"
            " AND status IN ('won', 'lost') AND closed_at >= ? AND closed_at < ?", [org_id, t0, t1])
    acc: dict[str | None, list[Any]] = defaultdict(lambda: [0, 0, 0.0])
    for owner, status, created, closed in rows:
        a = acc[owner]
        if status == "won":
            a[0] += 1
            a[2] += (db.read_ts(closed) - db.read_ts(created)).total_seconds() / 86400  # type: ignore[operator]
        else:
            a[1] += 1

    def line(owner: str | None, won: int, lost: int, days: float) -> dict[str, Any]:
        return {"owner_id": owner, "won": won, "lost": lost,
                "win_rate": round(won / (won + lost), 4) if won + lost else None,
                "average_sales_cycle_days": round(days / won, 2) if won else None}

    out = [line(o, *v) for o, v in sorted(acc.items(), key=lambda kv: kv[0] or "")]
    tw, tl, td = sum(v[0] for v in acc.values()), sum(v[1] for v in acc.values()), sum(v[2] for v in acc.values())
    return {"from": start.isoformat(), "to": end.isoformat(), "rows": out, "totals": line(None, tw, tl, td)}


async def activity_report(db: Database, org_id: str, start: date, end: date) -> dict[str, Any]:
    t0 = db.ts(datetime(start.year, start.month, start.day, tzinfo=UTC))
    t1 = db.ts(datetime.fromordinal(end.toordinal() + 1).replace(tzinfo=UTC))
    async with db.reader() as conn:
        rows = await conn.fetch(
            "SELECT owner_id, kind, count(*) FROM crm_activity WHERE org_id = ? AND deleted_at IS NULL"
            " AND occurred_at >= ? AND occurred_at < ? GROUP BY owner_id, kind", [org_id, t0, t1])
    kinds = ("call", "meeting", "email", "note", "task")
    acc: dict[str | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(kinds, 0))
    for owner, kind, n in rows:
        acc[owner][kind] = int(n)
    out = [{"owner_id": o, **v, "total": sum(v.values())} for o, v in sorted(acc.items(), key=lambda kv: kv[0] or "")]
    return {"from": start.isoformat(), "to": end.isoformat(), "rows": out}


def as_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if not rows:
        return ""
    cols = list(rows[0])
    w = csv.writer(buf)
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in cols])
    return buf.getvalue()


# -- timelines --------------------------------------------------------------------------------------------


_TL_COLS = ("id", "subject_type", "subject_id", "at", "kind", "title", "body", "ref_type", "ref_id", "actor_id",
            "data")


async def timeline(db: Database, cursors: CursorCodec, org_id: str, subject_id: str, limit: int,
                   cursor: str | None, kinds: list[str] | None = None) -> dict[str, Any]:
    """Newest first, keyset-paginated on (at, id)."""
    fp = f"timeline:{subject_id}:{','.join(kinds or [])}"
    sql = f"SELECT {', '.join(_TL_COLS)} FROM crm_timeline WHERE org_id = ? AND subject_id = ?"
    args: list[Any] = [org_id, subject_id]
    if kinds:
        sql += f" AND kind IN ({','.join('?' * len(kinds))})"
        args += kinds
    if cursor:
        after = cursors.decode(cursor, fp)
        if len(after) != 2 or not all(isinstance(v, str) for v in after):
            raise bad_request("The cursor is invalid; start again without one.", pointer="/query/cursor")
        moment = db.ts(db.read_ts(after[0]))
        sql += " AND (at < ? OR (at = ? AND id < ?))"
        args += [moment, moment, after[1]]
    sql += " ORDER BY at DESC, id DESC LIMIT ?"
    args.append(limit + 1)
    async with db.reader() as conn:
        rows = await conn.fetch(sql, args)
    items = []
    from nexus.kernel.jsonutil import iso, loads

    for r in rows[:limit]:
        d = dict(zip(_TL_COLS, r, strict=True))
        at = d["at"]
        d["at"] = iso(at) if isinstance(at, datetime) else at
        if isinstance(d["data"], (str, bytes)):
            d["data"] = loads(d["data"])
        items.append(d)
    nxt = cursors.encode(fp, [items[-1]["at"], items[-1]["id"]]) if len(rows) > limit else None
    return {"items": items, "next_cursor": nxt}
