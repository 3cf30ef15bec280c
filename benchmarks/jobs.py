"""Job queue throughput: jobs per second with one and two `nexus worker` processes.

    .venv/bin/python benchmarks/jobs.py                      # SQLite and PostgreSQL, 20 000 jobs, 1 and 2 workers
    .venv/bin/python benchmarks/jobs.py --db sqlite --jobs 5000 --workers 1,2,4

For each database it makes a fresh one (a temporary SQLite file, or a new PostgreSQL
database that is dropped at the end) and migrates it. Then, for each worker count, it starts
that many `nexus worker` processes (each runs 8 jobs at once, or --concurrency), waits until they
are up, inserts N `kernel.noop` jobs in one transaction, and waits until every job is done.
The rate is N divided by the time from the first job's start to the last job's finish, both
read from kernel_job, so process start-up does not count. A no-op job measures the queue
itself: claiming (SKIP LOCKED on PostgreSQL), renewing and recording, not a handler.

It also measures enqueueing: `JobQueue.enqueue` one job at a time (one transaction each),
from one client. Prints a table and writes benchmarks/results/<timestamp>-jobs.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from nexus.kernel.config import Settings  # noqa: E402
from nexus.kernel.db import create_database  # noqa: E402
from nexus.kernel.ids import new_id  # noqa: E402
from nexus.kernel.jobs import JobQueue  # noqa: E402
from nexus.kernel.jsonutil import utcnow  # noqa: E402

NEXUS = str(Path(sys.executable).parent / "nexus")
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def env_for(data_dir: Path, secret: str, db_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env.update({"NEXUS_DATA_DIR": str(data_dir), "NEXUS_SECRET_KEY": secret, "NEXUS_LOG_LEVEL": "WARNING"})
    if db_url:
        env["NEXUS_DATABASE_URL"] = db_url
    return env


async def pg_admin(sql: str) -> None:
    import asyncpg

    con = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await con.execute(sql)
    finally:
        await con.close()


def start_workers(n: int, env: dict[str, str], concurrency: int | None) -> list[subprocess.Popen[str]]:
    extra = ["--concurrency", str(concurrency)] if concurrency else []
    procs = [subprocess.Popen([NEXUS, "worker", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(n)]
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        while line and "nexus worker: running" not in line:
            line = p.stdout.readline()
        if not line:
            raise SystemExit(f"a worker did not start: {p.stdout.read()}")
    return procs


def stop_workers(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


async def insert_jobs(settings: Settings, n: int) -> None:
    db = create_database(settings)
    await db.open()
    try:
        now = utcnow()
        rows = [[new_id(), "BENCH", "kernel.noop", db.json({"i": i}), 0, 1, db.ts(now), None, db.ts(now)]
                for i in range(n)]
        async with db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO kernel_job (id, org_id, name, payload, priority, status, attempts, max_attempts, run_at,"
                " unique_key, created_at) VALUES (?,?,?,?,?,'queued',0,?,?,?,?)", rows)
    finally:
        await db.close()


async def wait_done(settings: Settings, n: int, timeout: float) -> dict[str, Any]:
    db = create_database(settings)
    await db.open()
    try:
        deadline = time.monotonic() + timeout
        while True:
            async with db.reader() as conn:
                done = int(await conn.fetchval("SELECT count(*) FROM kernel_job WHERE status = 'done'") or 0)
            if done >= n:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {n} jobs were done after {timeout} s")
            await asyncio.sleep(0.05)
        async with db.reader() as conn:
            first, last = await conn.fetchrow("SELECT min(started_at), max(finished_at) FROM kernel_job")
            others = int(await conn.fetchval("SELECT count(*) FROM kernel_job WHERE status <> 'done'") or 0)
        await reset(db)
        start, end = db.read_ts(first), db.read_ts(last)
        assert start is not None and end is not None
        seconds = (end - start).total_seconds()
        return {"jobs": n, "seconds": round(seconds, 3), "jobs_per_s": round(n / seconds, 1), "not_done": others}
    finally:
        await db.close()


async def enqueue_rate(settings: Settings, n: int) -> float:
    db = create_database(settings)
    await db.open()
    try:
        q = JobQueue(db)
        q.register("kernel.noop", _noop)
        t0 = time.perf_counter()
        for i in range(n):
            await q.enqueue("kernel.noop", {"i": i}, org_id="BENCH", run_at=datetime(2100, 1, 1, tzinfo=UTC))
        rate = n / (time.perf_counter() - t0)
        await reset(db)
        return round(rate, 1)
    finally:
        await db.close()


async def reset(db: Any) -> None:
    """Empty the queue and, on PostgreSQL, vacuum it, so that every run starts from the same
    state (dead index entries of the previous run would otherwise slow the next one's claims;
    in production autovacuum keeps them down)."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM kernel_job")
    if db.dialect == "postgresql":
        async with db.reader() as conn:
            await conn.execute("VACUUM ANALYZE kernel_job")


async def _noop(ctx: Any, payload: dict[str, Any]) -> None:
    return None


def bench_database(kind: str, jobs: int, worker_counts: list[int], timeout: float,
                   concurrency: int | None) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"nexus-bench-jobs-{kind}-"))
    secret = secrets.token_urlsafe(48)
    db_name = None
    db_url = None
    if kind == "postgresql":
        db_name = f"nexus_bench_jobs_{os.getpid()}"
        asyncio.run(pg_admin(f'CREATE DATABASE "{db_name}"'))
        db_url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{db_name}"
    env = env_for(data_dir, secret, db_url)
    out: dict[str, Any] = {"database": kind, "runs": []}
    try:
        subprocess.run([NEXUS, "migrate"], env=env, check=True, capture_output=True, text=True)
        settings = Settings.from_env(env)
        out["enqueue_per_s"] = asyncio.run(enqueue_rate(settings, min(jobs, 3000)))
        for k in worker_counts:
            procs = start_workers(k, env, concurrency)
            try:
                asyncio.run(insert_jobs(settings, jobs))
                result = asyncio.run(wait_done(settings, jobs, timeout))
            finally:
                stop_workers(procs)
            result["workers"] = k
            out["runs"].append(result)
            print(f"  {kind:<10} {k} worker(s): {result['jobs_per_s']:>8.0f} jobs/s "
                  f"({jobs} jobs in {result['seconds']:.2f} s)", flush=True)
        print(f"  {kind:<10} enqueue, one at a time: {out['enqueue_per_s']:>8.0f} jobs/s", flush=True)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if db_name:
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--concurrency", type=int, default=None, help="`nexus worker --concurrency` (default: its own, 8)")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    results = {
        "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "databases": [],
    }
    results["concurrency"] = args.concurrency or 8
    print(f"NEXUS jobs benchmark: {args.jobs} kernel.noop jobs, workers {counts}, {results['concurrency']} jobs at"
          f" once per worker, {os.cpu_count()} CPUs")
    for kind in [d.strip() for d in args.db.split(",") if d.strip()]:
        results["databases"].append(bench_database(kind, args.jobs, counts, args.timeout, args.concurrency))
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-jobs.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
