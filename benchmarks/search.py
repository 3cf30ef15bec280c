"""Global search speed: p50/p95 of the query path over 100 000 indexed records, with
permission filtering, on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

    .venv/bin/python benchmarks/search.py                     # both databases, 100 000 records
    .venv/bin/python benchmarks/search.py --db sqlite --records 20000 --queries 300

For each database: a fresh database, migrated; one org's 100 000 records (plus --noise
records spread over other orgs) written straight into the index with the very upsert the
event subscriber uses (kernel/search.py upsert_sql/upsert_params), text drawn from a Zipf-
distributed vocabulary (titles 3–9 words, bodies 0–150 words) over four resource types. Then
it times, after a warm-up:

  * in-process `SearchIndex.search()` (permission set, SQL, ranking, highlights, facets) for a
    mix of queries — type-ahead prefixes of 2+ letters, whole words, two and three words,
    rare words — as an owner (every type readable) and as a restricted caller (two types);
  * the same as the owner filtered to one small type (`type=tasks.projects`, 5% of entries);
  * the HTTP path, GET /api/v1/search through the ASGI app in-process (authentication,
    parameter checks, JSON), as a signed-in user.

It prints p50/p95/p99/max per database, caller and query kind, and writes
benchmarks/results/<timestamp>-search.json. The PostgreSQL database it creates and the
temporary directory are removed at the end.
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
from datetime import UTC, datetime, timedelta
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

COMMON = """
the of and to in for on with at by from as is be this that it are was will not or an all new
project task report meeting review budget plan client customer invoice order contract proposal
sales marketing product release design team update status draft final quarterly annual monthly
weekly schedule deadline launch campaign website mobile app server database migration security
audit compliance policy training onboarding hiring interview candidate payroll expense travel
office supplies vendor supplier shipment delivery warehouse inventory stock price quote discount
support ticket issue bug feature request feedback survey analysis forecast revenue cost margin
account payment receipt tax return legal review approval sign contract renewal partner event
conference webinar newsletter blog post social media video photo brochure presentation slides
document spreadsheet template checklist roadmap milestone sprint backlog estimate priority risk
""".split()
SYLLABLES = ("ka", "lo", "mi", "ren", "tor", "va", "qui", "zen", "bar", "del", "fi", "gor", "hu", "jan",
             "lex", "mor", "nu", "pra", "sol", "tri", "ul", "vin", "wex", "yo", "zu", "an", "el", "is",
             "ox", "um", "ber", "cal", "dor", "est", "fan", "gil", "har", "ion", "jor", "kel")
TYPES = (("tasks", "tasks", 0.55), ("tasks", "comments", 0.30), ("tasks", "projects", 0.05),
         ("identity", "users", 0.10))


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words = list(dict.fromkeys(COMMON))
    seen = set(words)
    while len(words) < size:
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


class Text:
    """Zipf-distributed words (rank r has weight 1/r^1.05), a few capitalised or accented."""

    def __init__(self, rng: random.Random, size: int = 20_000) -> None:
        self.rng = rng
        self.words = vocabulary(rng, size)
        weights = [1 / (r + 1) ** 1.05 for r in range(len(self.words))]
        total = sum(weights)
        acc, cum = 0.0, []
        for w in weights:
            acc += w / total
            cum.append(acc)
        self.cum = cum

    def word(self) -> str:
        import bisect

        return self.words[min(bisect.bisect(self.cum, self.rng.random()), len(self.words) - 1)]

    def sentence(self, lo: int, hi: int) -> str:
        n = self.rng.randint(lo, hi)
        ws = [self.word() for _ in range(n)]
        if ws:
            ws[0] = ws[0].capitalize()
        return " ".join(ws)


def pick_type(rng: random.Random) -> tuple[str, str]:
    x = rng.random()
    for app, res, share in TYPES:
        if x < share:
            return app, res
        x -= share
    return TYPES[0][0], TYPES[0][1]


def percentiles(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)

    def pct(p: float) -> float:
        return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]

    return {"n": len(s), "p50": round(pct(50), 2), "p95": round(pct(95), 2), "p99": round(pct(99), 2),
            "max": round(s[-1], 2), "mean": round(statistics.fmean(s), 2)}


def queries(text: Text, rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(kind, q): what people type into a search box."""
    out: list[tuple[str, str]] = []
    common = [w for w in text.words[:300] if len(w) >= 3]
    rare = text.words[2000:]
    while len(out) < n:
        kind = rng.choice(("prefix", "prefix", "word", "two-words", "three-words", "rare"))
        if kind == "prefix":
            w = text.word()
            while len(w) < 3:
                w = text.word()
            out.append((kind, w[: rng.randint(2, len(w))]))
        elif kind == "word":
            out.append((kind, rng.choice(common)))
        elif kind == "two-words":
            a, b = text.word(), text.word()
            out.append((kind, f"{a} {b[: max(2, len(b) - rng.randint(0, 3))]}"))
        elif kind == "three-words":
            out.append((kind, " ".join(text.word() for _ in range(3))))
        else:
            out.append((kind, rng.choice(rare)))
    return out


async def load(nx: Any, org_id: str, n: int, noise: int, text: Text, rng: random.Random,
               users: list[str]) -> float:
    """Index entries as the event subscriber writes them (SearchIndex.write, the same upsert),
    the org's and other orgs' interleaved; 5% are visible to one user only."""
    from nexus.kernel.search import Entry, scope_of

    db = nx.db
    index = nx.state["search"]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    other_orgs = [secrets.token_hex(13)[:26].upper() for _ in range(10)]
    started = time.perf_counter()
    batch: list[Any] = []
    total = n + noise
    mine = 0
    for i in range(total):
        if mine < n and (rng.random() * total < n or total - i <= n - mine):
            org = org_id
            mine += 1
        else:
            org = other_orgs[i % len(other_orgs)]
        app, res = pick_type(rng)
        title = text.sentence(3, 9)
        body = text.sentence(0, 150) if res != "users" else f"{title.split()[0].lower()}@example.com"
        visible = [f"user:{rng.choice(users)}"] if rng.random() < 0.05 else None
        batch.append(Entry(org, app, res, f"R{i:025d}", scope_of(visible), db.ts(base + timedelta(seconds=i)),
                           title, body))
        if len(batch) == 2000 or i == total - 1:
            async with db.transaction() as conn:
                await index.write(conn, batch)
            batch = []
    if db.dialect == "postgresql":
        async with db.reader() as conn:
            await conn.execute("VACUUM ANALYZE kernel_search")
    else:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO kernel_search_fts (kernel_search_fts) VALUES ('optimize')")
            await conn.execute("ANALYZE")
    return time.perf_counter() - started


async def bench_db(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from nexus.apps.identity.public import create_admin
    from nexus.kernel import migrate
    from nexus.kernel.config import Settings
    from nexus.kernel.context import Principal
    from nexus.kernel.http.app import Nexus

    data_dir = Path(tempfile.mkdtemp(prefix=f"nexus-bench-search-{backend}-"))
    db_name = None
    env = {"NEXUS_DATA_DIR": str(data_dir), "NEXUS_SECRET_KEY": secrets.token_urlsafe(48),
           "NEXUS_LOG_LEVEL": "WARNING"}
    if backend == "postgresql":
        import asyncpg

        db_name = f"nexus_bench_search_{secrets.token_hex(4)}"
        con = await asyncpg.connect(PG_ADMIN_URL)
        await con.execute(f'CREATE DATABASE "{db_name}"')
        await con.close()
        env["NEXUS_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
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
                text = Text(rng)
                print(f"[{backend}] loading {args.records} records (+{args.noise} in other orgs)…", flush=True)
                users = [user_id, *(secrets.token_hex(13).upper() for _ in range(19))]
                load_s = await load(nx, org_id, args.records, args.noise, text, rng, users)
                print(f"[{backend}] loaded in {load_s:.1f} s", flush=True)
                index = nx.state["search"]
                owner = Principal(user_id, org_id, "user", frozenset({"*"}), roles=("owner",))
                restricted = Principal(users[1], org_id, "user", frozenset({"tasks.projects.read", "tasks.tasks.read",
                                                                            "tasks.comments.read"}),
                                       roles=("member",))
                qs = queries(text, rng, args.queries)
                for _, q in qs[:50]:  # warm caches and plans
                    await index.search(owner, q)
                result: dict[str, Any] = {"records": args.records, "noise": args.noise, "load_s": round(load_s, 1)}
                for who, principal in (("owner", owner), ("restricted", restricted)):
                    times: dict[str, list[float]] = {}
                    hits: list[int] = []
                    for kind, q in qs:
                        t0 = time.perf_counter()
                        res = await index.search(principal, q, limit=20)
                        times.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
                        hits.append(res["total"])
                    every = [t for ts in times.values() for t in ts]
                    result[f"inprocess_{who}"] = {"all": percentiles(every),
                                                  **{k: percentiles(v) for k, v in sorted(times.items())},
                                                  "median_total_hits": statistics.median(hits)}
                filtered: list[float] = []
                for _, q in qs[: args.http_queries]:
                    t0 = time.perf_counter()
                    await index.search(owner, q, types=("tasks.projects",))
                    filtered.append((time.perf_counter() - t0) * 1000)
                result["inprocess_owner_type_projects"] = {"all": percentiles(filtered)}
                http_times: list[float] = []
                for _, q in qs[: args.http_queries]:
                    t0 = time.perf_counter()
                    r = await client.get("/api/v1/search", params={"q": q}, headers=headers)
                    http_times.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text
                result["http_owner"] = {"all": percentiles(http_times)}
                return result
        finally:
            await nx.shutdown()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if db_name:
            import asyncpg

            con = await asyncpg.connect(PG_ADMIN_URL)
            await con.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            await con.close()


def report(backend: str, res: dict[str, Any]) -> None:
    print(f"\n== {backend}: {res['records']} records in the org (+{res['noise']} in others), loaded in "
          f"{res['load_s']} s")
    print(f"  {'path':<24} {'kind':<12} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for key in ("inprocess_owner", "inprocess_restricted", "inprocess_owner_type_projects", "http_owner"):
        for kind, s in res[key].items():
            if isinstance(s, dict):
                print(f"  {key:<24} {kind:<12} {s['n']:>5} {s['p50']:>8} {s['p95']:>8} {s['p99']:>8} {s['max']:>8}")
        if "median_total_hits" in res[key]:
            print(f"  {key:<24} median hits per query: {res[key]['median_total_hits']}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--noise", type=int, default=20_000, help="records of other orgs in the same index")
    ap.add_argument("--queries", type=int, default=1200)
    ap.add_argument("--http-queries", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    out: dict[str, Any] = {"when": datetime.now(UTC).isoformat(), "machine": platform.platform(),
                           "python": platform.python_version(), "cpus": os.cpu_count(), "results": {}}
    for b in backends:
        out["results"][b] = await bench_db(b, args)
        report(b, out["results"][b])
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-search.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwritten to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
