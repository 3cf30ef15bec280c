"""CRM read speed on a big org: p50/p95 of the pipeline board, the forecast and a busy
deal's timeline over 100 000 deals and 500 000 activities, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/crm.py                              # both databases, full size
    .venv/bin/python benchmarks/crm.py --db sqlite --deals 20000 --activities 100000 --requests 100

For each database: a fresh database, migrated; one org with 3 pipelines of 7 stages (60 % of
the deals in the first), 50 owners, deals in EUR/USD/GBP with close dates over two years and
stage history, 500 000 activities spread over the deals (one timeline entry each, as the event
subscriber writes them), and one busy deal with 5 000 activities — all bulk-inserted (SQLite
executemany, PostgreSQL COPY), then ANALYZEd (PostgreSQL: VACUUM ANALYZE, as autovacuum would). It then times, over HTTP through the ASGI app in
process (authentication, permission, query, JSON), after a warm-up:

  * board     GET /api/v1/crm/pipelines/{biggest}/board?limit=20 — 7 columns: counts, totals
              converted to the org currency, first 20 cards each             target p95 < 100 ms
  * forecast  GET /api/v1/crm/forecast?period=quarter&group_by=owner — 4 quarters, 50 owners,
              weighted and committed, converted                              target p95 < 200 ms
  * timeline  GET /api/v1/crm/deals/{busy}/timeline?limit=50 (first page and a later one)
                                                                             target p95 < 50 ms

and writes benchmarks/results/<timestamp>-crm.json. The PostgreSQL database it creates and
the temporary directory are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NEXUS_PASSWORD_HASH", "fast")
os.environ.setdefault("NEXUS_LOG_LEVEL", "WARNING")

PG_ADMIN_URL = os.environ.get("NEXUS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS = HERE / "results"
TARGETS = {"board": 100.0, "forecast": 200.0, "timeline_first": 50.0, "timeline_later": 50.0}
STAGES = (("Lead in", 10, "open"), ("Qualified", 25, "open"), ("Demo", 40, "open"), ("Proposal", 60, "open"),
          ("Negotiation", 80, "open"), ("Won", 100, "won"), ("Lost", 0, "lost"))


def percentiles(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)

    def pct(p: float) -> float:
        return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]

    return {"n": len(s), "p50": round(pct(50), 2), "p95": round(pct(95), 2), "p99": round(pct(99), 2),
            "max": round(s[-1], 2), "mean": round(statistics.fmean(s), 2)}


_COPY: list[Any] = []  # PostgreSQL: a connection of its own for COPY (binary jsonb codec)


async def bulk(db: Any, spec: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows as they are, in batches: executemany on SQLite, COPY on PostgreSQL."""
    cols = list(spec.all_names)
    if db.dialect == "postgresql" and not _COPY:
        import asyncpg

        con = await asyncpg.connect(os.environ["NEXUS_BENCH_DB_URL"])
        await con.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                                 encoder=lambda v: b"\x01" + v.encode(), decoder=lambda b: b[1:].decode())
        _COPY.append(con)
    for i in range(0, len(rows), 20_000):
        chunk = rows[i:i + 20_000]
        if db.dialect == "postgresql":
            await _COPY[0].copy_records_to_table(
                spec.name, columns=cols, records=[tuple(_pg(spec, c, r.get(c)) for c in cols) for r in chunk])
            continue
        async with db.transaction() as conn:
            await conn.executemany(
                f"INSERT INTO {spec.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [[spec.encode(db, c, r.get(c)) for c in cols] for r in chunk])


def _pg(spec: Any, col: str, value: Any) -> Any:
    if value is not None and spec.by_name[col].kind == "json":
        return json.dumps(value)
    return value


def _id(n: int, prefix: str) -> str:
    return f"{prefix}{n:0{26 - len(prefix)}d}"


async def seed(nx: Any, org_id: str, user_id: str, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    from nexus.apps.crm import models
    from nexus.apps.crm.service import ACTIVITY, DEAL, HISTORY, PIPELINE, SETTINGS, STAGE, TIMELINE
    from nexus.kernel.records import TableSpec

    db = nx.db
    now = datetime.now(UTC).replace(microsecond=0)
    base = {"org_id": org_id, "created_by": user_id, "updated_by": user_id, "version": 1, "deleted_at": None}
    owners = [user_id, *(_id(i, "U") for i in range(49))]
    await bulk(db, SETTINGS, [{**base, "id": _id(1, "S"), "currency": "EUR", "fiscal_year_start_month": 1,
                               "created_at": now, "updated_at": now}])
    rates = TableSpec(models.ExchangeRate)
    await bulk(db, rates, [
        {**base, "id": _id(i, "X"), "currency": cur, "rate": Decimal(r), "valid_from": date(2024, 1, 1) + timedelta(days=90 * i),
         "created_at": now, "updated_at": now}
        for i, (cur, r) in enumerate([("USD", "0.92"), ("GBP", "1.17"), ("USD", "0.90"), ("GBP", "1.15")] * 3)])
    pipelines, stages = [], []
    for p in range(3):
        pid = _id(p, "P")
        pipelines.append({**base, "id": pid, "name": f"Pipeline {p}", "description": "", "is_default": p == 0,
                          "created_at": now, "updated_at": now})
        for i, (name, prob, kind) in enumerate(STAGES):
            stages.append({**base, "id": _id(p * 10 + i, "G"), "pipeline_id": pid, "name": name, "position": i,
                           "probability": prob, "kind": kind, "created_at": now, "updated_at": now})
    await bulk(db, PIPELINE, pipelines)
    await bulk(db, STAGE, stages)
    started = time.perf_counter()
    deals, history = [], []
    today = now.date()
    for n in range(args.deals):
        p = 0 if rng.random() < 0.6 else rng.randint(1, 2)
        stage = stages[p * 7 + rng.choices(range(7), weights=(30, 20, 12, 10, 8, 12, 8))[0]]
        created = now - timedelta(seconds=rng.randint(0, 730 * 86400))
        updated = created + timedelta(seconds=rng.randint(0, max(1, int((now - created).total_seconds()))))
        cur = rng.choices(("EUR", "USD", "GBP"), weights=(6, 3, 1))[0]
        closed = updated if stage["kind"] != "open" else None
        did = _id(n, "D")
        deals.append({**base, "id": did, "title": f"Deal {n}", "amount": Decimal(rng.randint(500, 500_000)) / 1,
                      "currency": cur, "expected_close_date": today + timedelta(days=rng.randint(-365, 365)),
                      "probability": stage["probability"], "owner_id": rng.choice(owners),
                      "pipeline_id": stage["pipeline_id"], "stage_id": stage["id"], "status": stage["kind"],
                      "committed": rng.random() < 0.2, "company_id": None, "contact_id": None, "lead_id": None,
                      "description": "", "stage_entered_at": updated, "closed_at": closed, "lost_reason": "",
                      "won_reason": "", "tags": [], "custom": {}, "created_at": created, "updated_at": updated})
        history.append({"id": _id(n, "H"), "org_id": org_id, "deal_id": did, "pipeline_id": stage["pipeline_id"],
                        "stage_id": stage["id"], "entered_at": updated, "left_at": None, "entered_by": user_id})
    busy = deals[0]["id"]
    await bulk(db, DEAL, deals)
    await bulk(db, HISTORY, history)
    deals_s = time.perf_counter() - started
    started = time.perf_counter()
    kinds = ("call", "meeting", "email", "note", "task")
    n_busy = min(5000, args.activities // 10)
    for start in range(0, args.activities, 50_000):
        acts, tl = [], []
        for n in range(start, min(args.activities, start + 50_000)):
            deal = busy if n < n_busy else deals[rng.randrange(len(deals))]["id"]
            at = now - timedelta(seconds=rng.randint(0, 730 * 86400))
            kind = kinds[n % 5]
            aid = _id(n, "A")
            acts.append({**base, "id": aid, "kind": kind, "subject": f"{kind} {n}", "body": "", "occurred_at": at,
                         "due_at": None, "duration_minutes": 15, "owner_id": rng.choice(owners), "deal_id": deal,
                         "contact_id": None, "company_id": None, "lead_id": None, "task_id": None, "done": False,
                         "created_at": at, "updated_at": at})
            tl.append({"id": _id(n, "T"), "org_id": org_id, "subject_type": "deal", "subject_id": deal, "at": at,
                       "kind": f"activity.{kind}", "title": f"{kind} {n}", "body": "", "ref_type": "crm.activities",
                       "ref_id": aid, "actor_id": user_id, "event_id": _id(n, "E"), "data": {"kind": kind}})
        await bulk(db, ACTIVITY, acts)
        await bulk(db, TIMELINE, tl)
    activities_s = time.perf_counter() - started
    if db.dialect == "postgresql":
        # What autovacuum does on a live database: statistics, and the visibility map that lets
        # the covering indexes answer without visiting the table.
        async with db.reader() as conn:
            for table in ("crm_deal", "crm_activity", "crm_timeline", "crm_stage_history", "crm_stage"):
                await conn.execute(f"VACUUM ANALYZE {table}")
    else:
        async with db.transaction() as conn:
            await conn.execute("ANALYZE")
    return {"pipeline_id": pipelines[0]["id"], "busy_deal_id": busy, "busy_entries": n_busy,
            "seed_deals_s": round(deals_s, 1), "seed_activities_s": round(activities_s, 1)}


async def bench_db(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from nexus.apps.identity.public import create_admin
    from nexus.kernel import migrate
    from nexus.kernel.config import Settings
    from nexus.kernel.http.app import Nexus

    data_dir = Path(tempfile.mkdtemp(prefix=f"nexus-bench-crm-{backend}-"))
    db_name = None
    env = {"NEXUS_DATA_DIR": str(data_dir), "NEXUS_SECRET_KEY": secrets.token_urlsafe(48),
           "NEXUS_LOG_LEVEL": "WARNING", "NEXUS_RATE_LIMITS": "read=100000000/60,write=100000000/60"}
    if backend == "postgresql":
        import asyncpg

        db_name = f"nexus_bench_crm_{secrets.token_hex(4)}"
        con = await asyncpg.connect(PG_ADMIN_URL)
        await con.execute(f'CREATE DATABASE "{db_name}"')
        await con.close()
        env["NEXUS_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
        os.environ["NEXUS_BENCH_DB_URL"] = env["NEXUS_DATABASE_URL"]
    try:
        settings = Settings.from_env(env)
        await asyncio.to_thread(migrate.upgrade, settings)
        nx = Nexus(settings, run_background=False)
        await nx.startup()
        try:
            email, password, slug = "owner@bench.test", "correct horse battery", "bench"
            await create_admin(nx.db, email, password, slug)
            transport = httpx.ASGITransport(app=nx, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://nexus.bench") as client:
                tok = await client.post("/api/v1/auth/token", data={"grant_type": "password", "username": email,
                                                                      "password": password, "org": slug})
                tok.raise_for_status()
                headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
                me = (await client.get("/api/v1/identity/me", headers=headers)).json()
                org_id, user_id = me["org"]["id"], me["id"]
                rng = random.Random(args.seed)
                print(f"[{backend}] seeding {args.deals} deals and {args.activities} activities…", flush=True)
                info = await seed(nx, org_id, user_id, args, rng)
                print(f"[{backend}] seeded: deals {info['seed_deals_s']} s, activities {info['seed_activities_s']} s",
                      flush=True)
                crm = "/api/v1/crm"
                tl_url = f"{crm}/deals/{info['busy_deal_id']}/timeline"
                first = (await client.get(tl_url, params={"limit": 50}, headers=headers)).json()
                later_cursor = first["next_cursor"]
                for _ in range(10):  # a page deep into the busy deal's history
                    page = (await client.get(tl_url, params={"limit": 50, "cursor": later_cursor},
                                             headers=headers)).json()
                    later_cursor = page["next_cursor"] or later_cursor
                scenarios = {
                    "board": (f"{crm}/pipelines/{info['pipeline_id']}/board", {"limit": 20}),
                    "forecast": (f"{crm}/forecast", {"period": "quarter", "group_by": "owner"}),
                    "timeline_first": (tl_url, {"limit": 50}),
                    "timeline_later": (tl_url, {"limit": 50, "cursor": later_cursor}),
                }
                result: dict[str, Any] = {"deals": args.deals, "activities": args.activities, **info}
                for name, (url, params) in scenarios.items():
                    for _ in range(args.warmup):
                        r = await client.get(url, params=params, headers=headers)
                        assert r.status_code == 200, r.text
                    times = []
                    for _ in range(args.requests):
                        t0 = time.perf_counter()
                        r = await client.get(url, params=params, headers=headers)
                        times.append((time.perf_counter() - t0) * 1000)
                        assert r.status_code == 200, r.text
                    result[name] = percentiles(times)
                    result[name]["target_p95"] = TARGETS[name]
                    result[name]["met"] = result[name]["p95"] < TARGETS[name]
                board = (await client.get(scenarios["board"][0], params={"limit": 20}, headers=headers)).json()
                result["board_shape"] = {"columns": len(board["columns"]),
                                         "cards": sum(len(c["items"]) for c in board["columns"]),
                                         "deals_in_pipeline": sum(c["count"] for c in board["columns"])}
                fc = (await client.get(scenarios["forecast"][0], params=scenarios["forecast"][1],
                                       headers=headers)).json()
                result["forecast_rows"] = len(fc["rows"])
                return result
        finally:
            while _COPY:
                await _COPY.pop().close()
            await nx.shutdown()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if db_name:
            import asyncpg

            con = await asyncpg.connect(PG_ADMIN_URL)
            await con.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            await con.close()


def report(backend: str, res: dict[str, Any]) -> None:
    print(f"\n== {backend}: {res['deals']} deals, {res['activities']} activities (busy deal: {res['busy_entries']} "
          f"timeline entries); board {res['board_shape']}, forecast rows {res['forecast_rows']}")
    print(f"  {'scenario':<16} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'target':>8}")
    for key in TARGETS:
        s = res[key]
        print(f"  {key:<16} {s['n']:>5} {s['p50']:>8} {s['p95']:>8} {s['p99']:>8} {s['max']:>8} "
              f"{'<' + str(int(s['target_p95'])):>7} {'met' if s['met'] else 'MISSED'}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--deals", type=int, default=100_000)
    ap.add_argument("--activities", type=int, default=500_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    out: dict[str, Any] = {"when": datetime.now(UTC).isoformat(), "machine": platform.platform(),
                           "python": platform.python_version(), "cpus": os.cpu_count(),
                           "load": os.getloadavg(), "results": {}}
    for b in backends:
        out["results"][b] = await bench_db(b, args)
        report(b, out["results"][b])
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-crm.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwritten to {path.relative_to(ROOT)}")
    if args.check and not all(r[k]["met"] for r in out["results"].values() for k in TARGETS):
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
