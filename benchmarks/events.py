"""NEXUS event benchmark: commit-to-subscriber latency and throughput, in-process and via NATS.

    .venv/bin/python benchmarks/events.py                       # SQLite and PostgreSQL, with and without NATS
    .venv/bin/python benchmarks/events.py --db sqlite --rate 500 --duration 10 --burst 5000
    .venv/bin/python benchmarks/events.py --no-nats             # in-process only

For each database it migrates a fresh database (SQLite in a temporary directory, PostgreSQL
`nexus_evbench_<pid>_<hex>`), starts a `Nexus` in this process (the outbox dispatcher and
tail run in the background exactly as under `nexus serve`) and registers an in-process
subscriber. Then, in two configurations — in-process only, and relaying to NATS JetStream on
--nats-url with a unique stream `NEXUSBENCH<hex>` (deleted afterwards) — it:

  * steady: commits --rate writes/s for --duration s, each its own UnitOfWork that emits one
    `nexus.bench.ping.created` event (the write is the outbox row, committed as under any
    create), and measures for every event the time from the commit returning to
      (a) the in-process subscriber receiving it, and
      (b) a JetStream ordered push consumer (same process) receiving it;
  * burst: commits --burst writes as fast as --concurrency writers can, and reports the
    delivered events/s (events / time from the first write to the last receipt).

Prints p50/p95/p99/max lag per configuration and the burst throughput, checks the target
(p95 < 200 ms at 500 writes/s) and writes everything to benchmarks/results/events-<ts>.json.
See docs/performance.md, section "Events".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT / "src"))

from nexus.kernel import migrate  # noqa: E402
from nexus.kernel.config import Settings  # noqa: E402
from nexus.kernel.context import system_context  # noqa: E402
from nexus.kernel.http.app import Nexus  # noqa: E402
from nexus.kernel.records import UnitOfWork  # noqa: E402

EVENT_TYPE = "nexus.bench.ping.created"
TARGET_P95_MS = 200.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(lags: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in lags]
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "p99_ms": pct(ms, 99),
            "max_ms": max(ms) if ms else float("nan")}


class Probe:
    """Commit and receipt times by event subject (a unique id per write)."""

    def __init__(self) -> None:
        self.committed: dict[str, float] = {}
        self.local: dict[str, float] = {}
        self.nats: dict[str, float] = {}

    async def on_event(self, uow: UnitOfWork, ev: dict[str, Any]) -> None:
        self.local.setdefault(ev["subject"], time.perf_counter())

    async def on_nats(self, msg: Any) -> None:
        now = time.perf_counter()
        self.nats.setdefault(json.loads(msg.data)["subject"], now)

    def lags(self, received: dict[str, float], keys: list[str]) -> list[float]:
        return [received[k] - self.committed[k] for k in keys if k in received]


async def write(nx: Nexus, probe: Probe, key: str) -> None:
    async with UnitOfWork(nx.db, system_context("bench")) as uow:
        uow.emit(EVENT_TYPE, key, {"id": key, "record": {"n": key}, "previous": None})
    probe.committed[key] = time.perf_counter()


async def wait_all(received: dict[str, float], keys: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(k in received for k in keys):
        await asyncio.sleep(0.05)


async def steady(nx: Nexus, probe: Probe, rate: float, duration: float, prefix: str, nats: bool) -> dict[str, Any]:
    n = int(rate * duration)
    keys = [f"{prefix}-s{i}" for i in range(n)]
    tasks: list[asyncio.Task[None]] = []
    t0 = time.perf_counter()
    behind = 0
    for i, k in enumerate(keys):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            behind += 1
        tasks.append(asyncio.create_task(write(nx, probe, k)))
    await asyncio.gather(*tasks)
    achieved = n / (time.perf_counter() - t0)
    await wait_all(probe.local, keys, 30)
    if nats:
        await wait_all(probe.nats, keys, 30)
    out: dict[str, Any] = {"writes": n, "target_rate": rate, "achieved_rate": round(achieved, 1),
                           "late_writes": behind, "in_process": summary(probe.lags(probe.local, keys))}
    if nats:
        out["nats"] = summary(probe.lags(probe.nats, keys))
    return out


async def burst(nx: Nexus, probe: Probe, count: int, concurrency: int, prefix: str, nats: bool) -> dict[str, Any]:
    keys = [f"{prefix}-b{i}" for i in range(count)]
    sem = asyncio.Semaphore(concurrency)

    async def one(k: str) -> None:
        async with sem:
            await write(nx, probe, k)

    t0 = time.perf_counter()
    await asyncio.gather(*[one(k) for k in keys])
    t_written = time.perf_counter()
    await wait_all(probe.local, keys, 120)
    out: dict[str, Any] = {"writes": count, "concurrency": concurrency,
                           "writes_per_s": round(count / (t_written - t0), 1)}
    got = [probe.local[k] for k in keys if k in probe.local]
    out["in_process_events_per_s"] = round(len(got) / (max(got) - t0), 1) if got else 0.0
    out["in_process_received"] = len(got)
    if nats:
        await wait_all(probe.nats, keys, 120)
        got = [probe.nats[k] for k in keys if k in probe.nats]
        out["nats_events_per_s"] = round(len(got) / (max(got) - t0), 1) if got else 0.0
        out["nats_received"] = len(got)
    return out


async def run_config(db: str, pg_url: str, nats_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="nexus-evbench-"))
    env = {"NEXUS_DATA_DIR": str(tmp), "NEXUS_SECRET_KEY": secrets.token_urlsafe(48), "NEXUS_LOG_LEVEL": "WARNING"}
    db_name = None
    stream = f"NEXUSBENCH{secrets.token_hex(3).upper()}"
    if db == "postgresql":
        import asyncpg

        db_name = f"nexus_evbench_{os.getpid()}_{secrets.token_hex(3)}"
        con = await asyncpg.connect(pg_url)
        await con.execute(f'CREATE DATABASE "{db_name}"')
        await con.close()
        env["NEXUS_DATABASE_URL"] = pg_url.rsplit("/", 1)[0] + "/" + db_name
    if nats_url:
        env.update(NEXUS_NATS_URL=nats_url, NEXUS_NATS_STREAM=stream)
    settings = Settings.from_env(env)
    await asyncio.to_thread(migrate.upgrade, settings)
    nx = Nexus(settings)
    probe = Probe()
    nx.events.subscribe("bench.lag", "nexus.bench.*", probe.on_event)
    nc = None
    try:
        await nx.startup()
        if nats_url:
            import nats

            nc = await nats.connect(nats_url)
            await nc.jetstream().subscribe(f"{stream.lower()}.nexus.bench.>", stream=stream,
                                           ordered_consumer=True, cb=probe.on_nats)
        # warm-up: connections, prepared statements, the dispatcher's first rounds
        await steady(nx, probe, min(args.rate, 200), 1.0, "warm", bool(nats_url))
        result = {"db": db, "nats": bool(nats_url),
                  "steady": await steady(nx, probe, args.rate, args.duration, "run", bool(nats_url)),
                  "burst": await burst(nx, probe, args.burst, args.concurrency, "run", bool(nats_url))}
        return result
    finally:
        if nc is not None:
            try:
                await nc.jetstream().delete_stream(stream)
            finally:
                await nc.close()
        await nx.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
        if db_name:
            import asyncpg

            con = await asyncpg.connect(pg_url)
            await con.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            await con.close()


def fmt(s: dict[str, float]) -> str:
    return f"p50 {s['p50_ms']:7.1f}  p95 {s['p95_ms']:7.1f}  p99 {s['p99_ms']:7.1f}  max {s['max_ms']:7.1f} ms"


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--rate", type=float, default=500.0, help="steady writes/s (default 500)")
    ap.add_argument("--duration", type=float, default=10.0, help="steady run, seconds (default 10)")
    ap.add_argument("--burst", type=int, default=5000, help="writes in the throughput run (default 5000)")
    ap.add_argument("--concurrency", type=int, default=32, help="writers in the throughput run (default 32)")
    ap.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    ap.add_argument("--no-nats", action="store_true", help="in-process only")
    ap.add_argument("--pg-url", default=os.environ.get("NEXUS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--check", action="store_true", help="exit 1 when p95 >= 200 ms")
    args = ap.parse_args()
    results: list[dict[str, Any]] = []
    for db in [d.strip() for d in args.db.split(",") if d.strip()]:
        for nats_url in [None] + ([] if args.no_nats else [args.nats_url]):
            r = await run_config(db, args.pg_url, nats_url, args)
            results.append(r)
            st, bu = r["steady"], r["burst"]
            label = f"{db:10} {'NATS' if r['nats'] else 'in-process':10}"
            print(f"{label} steady {st['achieved_rate']:.0f} writes/s ({st['writes']} events)", flush=True)
            print(f"{'':22} to in-process subscriber: {fmt(st['in_process'])}")
            if "nats" in st:
                print(f"{'':22} to JetStream consumer:    {fmt(st['nats'])}")
            line = f"{'':22} burst {bu['writes']} writes at {bu['writes_per_s']:.0f} writes/s -> "
            line += f"in-process {bu['in_process_events_per_s']:.0f} events/s"
            if "nats_events_per_s" in bu:
                line += f", NATS {bu['nats_events_per_s']:.0f} events/s"
            print(line, flush=True)
    worst = max(max(r["steady"]["in_process"]["p95_ms"], r["steady"].get("nats", {}).get("p95_ms", 0.0))
                for r in results)
    ok = worst < TARGET_P95_MS
    print(f"target: outbox lag p95 < {TARGET_P95_MS:.0f} ms at {args.rate:.0f} writes/s -> worst p95 {worst:.1f} ms "
          f"{'OK' if ok else 'MISSED'}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"events-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({"args": vars(args), "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                                                "python": sys.version.split()[0]},
                               "results": results}, indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
