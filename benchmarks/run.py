"""NEXUS benchmark runner: NEXUS against its bare-ASGI ceiling, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/run.py                 # both databases, 100 000 tasks, 10 s per scenario
    .venv/bin/python benchmarks/run.py --quick         # smoke check (20 000 tasks, 3 s per scenario)
    make bench ARGS="--db sqlite --duration 20"

For each database it starts NEXUS (`nexus serve`, granian) on a fresh database, creates an
owner and 20 users through the API, bulk-loads the tasks with direct SQL, starts the bare
ASGI baseline (benchmarks/baseline.py, same server and worker count, same database and
table) and drives wrk at both:

    (a) GET one task, authenticated            (d) the same read, bare ASGI + raw driver
    (b) list 50 tasks by assignee and status,  (e) the same list, bare
        sorted by due date
    (c) create a task (audit + outbox)         (f) a one-row insert, bare

It prints req/s and p50/p95/p99 per scenario, the ratios a/d, b/e, c/f against the targets,
and writes everything to benchmarks/results/<timestamp>.json. Only 127.0.0.1 is targeted;
servers, the PostgreSQL database it creates and its temporary directory are removed at the end.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
HOST = "127.0.0.1"
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
STATUSES = ("todo", "in_progress", "done")

# ratio targets (NEXUS / ceiling) and the p95 limit for (a), (b), (c)
TARGETS = {"a/d": 0.25, "b/e": 0.20, "c/f": 0.25}
P95_LIMIT_MS = 50.0
RATE_LIMITS = ",".join(f"{c}=1000000000/60" for c in ("read", "write", "auth", "bulk"))

SCENARIOS = {
    "a": ("GET one task", "nexus", "get"),
    "b": ("list 50 tasks (assignee+status, by due)", "nexus", "list"),
    "c": ("create task (audit+outbox)", "nexus", "create"),
    "d": ("bare GET one row", "baseline", "get"),
    "e": ("bare list 50 rows", "baseline", "list"),
    "f": ("bare insert one row", "baseline", "create"),
}
ORDER = ("a", "d", "b", "e", "c", "f")  # reads first, then writes; each next to its ceiling
RATIOS = (("a/d", "a", "d"), ("b/e", "b", "e"), ("c/f", "c", "f"))


class BenchError(Exception):
    """The run cannot go on; the message says why."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ processes


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server's process group (it was started in a session of its own)."""
        if self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def children(self) -> list[int]:
        """PIDs of the server's worker processes (granian spawns them)."""
        out: list[int] = []
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                for task in Path(f"/proc/{pid}/task").iterdir():
                    kids = (task / "children").read_text().split()
                    for k in kids:
                        out.append(int(k))
                        todo.append(int(k))
            except OSError:
                continue
        return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(name: str, cmd: list[str], env: dict[str, str], port: int, workdir: Path, ready_path: str,
                 timeout: float = 120.0) -> Server:
    log_path = workdir / f"{name}.log"
    fh = open(log_path, "wb")  # the child process inherits it
    proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=str(ROOT),
                            start_new_session=True)
    fh.close()
    server = Server(name, proc, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode} while starting:\n{server.log_tail()}")
        try:
            status, _ = http("GET", server.base + ready_path, timeout=2)
            if status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.3)
    server.stop()
    raise BenchError(f"{name} did not answer {ready_path} within {timeout:.0f} s:\n{server.log_tail()}")


def http(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 30) -> tuple[int, Any]:
    assert url.startswith(f"http://{HOST}:"), url
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def api(method: str, url: str, token: str | None = None, payload: Any = None, form: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200, 201)) -> Any:
    headers: dict[str, str] = {}
    body = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif payload is not None:
        body = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    status, data = http(method, url, body=body, headers=headers)
    if status not in expect:
        raise BenchError(f"{method} {url} answered {status}: {str(data)[:500]}")
    return data


# ------------------------------------------------------------------ wrk


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing; installing it with apt-get (Debian package 'wrk')")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env)
        path = shutil.which("wrk")
        if path:
            return path
    raise BenchError("the load generator wrk is not installed: install it (Debian/Ubuntu: "
                     "`sudo apt-get install wrk`, macOS: `brew install wrk`) and run again")


def lua_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for these values


def write_lua_config(path: Path, cfg: dict[str, Any]) -> None:
    parts = []
    for k, v in cfg.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            val = "{" + ",".join(lua_str(x) for x in v) + "}"
        elif isinstance(v, str):
            val = lua_str(v)
        else:
            val = repr(v)
        parts.append(f"  {k} = {val},")
    path.write_text("return {\n" + "\n".join(parts) + "\n}\n")


def run_wrk(wrk: str, url: str, config: Path, *, threads: int, connections: int, duration: float) -> dict[str, Any]:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
           "-s", str(HERE / "scenario.lua"), url, "--", str(config)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            data: dict[str, Any] = json.loads(line[9:])
            data["rps"] = data["requests"] / (data["duration_us"] / 1e6) if data["duration_us"] else 0.0
            return data
    raise BenchError(f"wrk gave no result (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


# ------------------------------------------------------------------ data


@dataclass
class Setup:
    token: str
    org_id: str
    admin_id: str
    assignees: list[str]
    sample_ids: list[str] = field(default_factory=list)


def ulid_factory() -> Any:
    from nexus.kernel.ids import new_id

    return new_id


def task_rows(n: int, org_id: str, admin_id: str, assignees: list[str], seed: int = 42) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    new_id = ulid_factory()
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for i in range(n):
        status = STATUSES[i % 3]
        created = now - timedelta(seconds=rnd.randint(3600, 180 * 86400))
        due = now + timedelta(minutes=rnd.randint(-30 * 1440, 90 * 1440))
        rows.append({
            "id": new_id(), "project_id": None, "parent_id": None, "title": f"Benchmark task {i}",
            "description": "Generated by benchmarks/run.py to measure list and read paths.",
            "status": status, "priority": rnd.randint(0, 4), "assignee_id": assignees[(i // 3) % len(assignees)],
            "due_at": due, "due_date": None, "due_timezone": "UTC", "all_day": False, "recurrence": None,
            "labels": "[]", "checklist": "[]", "position": float(i),
            "completed_at": created + timedelta(days=1) if status == "done" else None,
            "completed_by": admin_id if status == "done" else None, "recurrence_of": None,
            "next_occurrence_id": None, "org_id": org_id, "created_at": created, "created_by": admin_id,
            "updated_at": created, "updated_by": admin_id, "version": 1, "deleted_at": None,
        })
    return rows


TASK_COLUMNS = (
    "id", "project_id", "parent_id", "title", "description", "status", "priority", "assignee_id", "due_at",
    "due_date", "due_timezone", "all_day", "recurrence", "labels", "checklist", "position", "completed_at",
    "completed_by", "recurrence_of", "next_occurrence_id", "org_id", "created_at", "created_by", "updated_at",
    "updated_by", "version", "deleted_at",
)
TS_COLUMNS = ("due_at", "completed_at", "created_at", "updated_at", "deleted_at")


@dataclass
class TaskShape:
    """The task table as the current model declares it, so that a new column does not break the run."""

    select: tuple[str, ...]  # what NEXUS's generic read selects (TableSpec.names)
    table: tuple[str, ...]  # every column
    extra_defaults: dict[str, Any]  # columns this runner does not fill itself -> their model default


def task_shape() -> TaskShape:
    from nexus.apps.tasks import models
    from nexus.kernel.records import TableSpec

    spec = TableSpec(models.Task)
    extra: dict[str, Any] = {}
    for col in models.Task.__table__.columns:
        if col.name in TASK_COLUMNS:
            continue
        default = col.default
        value = None
        if default is not None:
            try:
                value = default.arg(None) if default.is_callable else default.arg
            except Exception:
                value = None
        if value is None and not col.nullable:
            raise BenchError(f"tasks_task.{col.name} is NOT NULL without a default; teach benchmarks/run.py "
                             "(TASK_COLUMNS, task_rows) and benchmarks/baseline.py (_new_row) to fill it")
        extra[col.name] = value
    return TaskShape(tuple(spec.names), tuple(spec.all_names), extra)


def insert_columns(shape: TaskShape) -> list[str]:
    return [c for c in (*TASK_COLUMNS, *shape.extra_defaults) if c in shape.table]


def load_sqlite(path: Path, rows: list[dict[str, Any]], shape: TaskShape) -> None:
    con = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    try:
        con.execute("PRAGMA busy_timeout=30000")
        cols = insert_columns(shape)
        sql = f"INSERT INTO tasks_task ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

        def conv(r: dict[str, Any]) -> list[Any]:
            out = []
            for c in cols:
                v = r[c] if c in r else shape.extra_defaults[c]
                if c in TS_COLUMNS and v is not None:
                    v = v.strftime(TS_FORMAT)
                elif isinstance(v, bool):
                    v = int(v)
                elif isinstance(v, (list, dict)):
                    v = json.dumps(v)
                out.append(v)
            return out

        con.execute("BEGIN IMMEDIATE")
        con.executemany(sql, (conv(r) for r in rows))
        con.execute("COMMIT")
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


async def load_postgres(url: str, rows: list[dict[str, Any]], shape: TaskShape) -> None:
    import asyncpg

    con = await asyncpg.connect(url)
    try:
        cols = insert_columns(shape)
        extra = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in shape.extra_defaults.items()}
        records = [tuple(r[c] if c in r else extra[c] for c in cols) for r in rows]
        await con.copy_records_to_table("tasks_task", records=records, columns=cols)
        await con.execute("VACUUM (ANALYZE) tasks_task")
    finally:
        await con.close()


async def pg_admin(base_url: str, sql: str) -> Any:
    import asyncpg

    con = await asyncpg.connect(base_url, timeout=10)
    try:
        if sql.upper().startswith("SELECT"):
            return await con.fetchval(sql)
        return await con.execute(sql)
    finally:
        await con.close()


def pg_url_for(base_url: str, dbname: str) -> str:
    parts = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))


# ------------------------------------------------------------------ one database


@dataclass
class DbRun:
    dialect: str
    workdir: Path
    args: argparse.Namespace
    wrk: str
    servers: list[Server] = field(default_factory=list)
    pg_db: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    shape: TaskShape = field(init=False)

    # -- lifecycle --------------------------------------------------------
    def cleanup(self) -> None:
        for s in reversed(self.servers):
            s.stop()
        self.servers.clear()
        if self.pg_db:
            try:
                asyncio.run(pg_admin(self.args.pg_url, f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)'))
                log(f"dropped PostgreSQL database {self.pg_db}")
            except Exception as exc:
                log(f"could not drop PostgreSQL database {self.pg_db}: {exc}")
            self.pg_db = None

    def database_url(self) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:///{self.workdir / 'nexus.db'}"
        self.pg_db = f"nexus_bench_{os.getpid()}_{secrets.token_hex(3)}"
        try:
            asyncio.run(pg_admin(self.args.pg_url, f'CREATE DATABASE "{self.pg_db}"'))
        except Exception as exc:
            db, self.pg_db = self.pg_db, None
            raise BenchError(f"cannot create PostgreSQL database {db} via {self.args.pg_url}: {exc}") from None
        log(f"created PostgreSQL database {self.pg_db}")
        return pg_url_for(self.args.pg_url, self.pg_db)

    def run(self) -> dict[str, Any]:
        a = self.args
        self.shape = task_shape()
        self.workdir.mkdir(parents=True)
        url = self.database_url()
        password = secrets.token_urlsafe(12)
        email = "bench-admin@example.com"
        env = {
            **os.environ,
            "NEXUS_DATA_DIR": str(self.workdir),
            "NEXUS_DATABASE_URL": url,
            "NEXUS_ADMIN_EMAIL": email,
            "NEXUS_ADMIN_PASSWORD": password,
            "NEXUS_LOG_LEVEL": "WARNING",
            "NEXUS_ACCESS_TOKEN_TTL": "7200",
            # One caller drives thousands of requests a second here: lift the per-caller budgets
            # out of reach while keeping the limiter's per-request check in the measured path.
            "NEXUS_RATE_LIMITS": os.environ.get("NEXUS_RATE_LIMITS", RATE_LIMITS),
        }
        env.pop("NEXUS_APPS", None)
        nexus_port = free_port()
        log(f"{self.dialect}: starting NEXUS on {HOST}:{nexus_port} ({a.workers} worker(s))")
        nexus = start_server("nexus", [*nexus_cmd(), "serve", "--host", HOST, "--port", str(nexus_port),
                                       "--workers", str(a.workers)], env, nexus_port, self.workdir,
                             "/api/v1/auth/status")
        self.servers.append(nexus)
        setup = self.prepare(nexus, email, password, url)

        base_port = free_port()
        benv = {**os.environ, "BENCH_DATABASE": url, "BENCH_ORG_ID": setup.org_id,
                "BENCH_POOL_SIZE": os.environ.get("NEXUS_DB_POOL_SIZE", "10"),
                "BENCH_COLUMNS": ",".join(self.shape.select), "BENCH_TABLE_COLUMNS": ",".join(self.shape.table),
                "BENCH_EXTRA_DEFAULTS": json.dumps(self.shape.extra_defaults, default=str),
                "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        log(f"{self.dialect}: starting the bare ASGI baseline on {HOST}:{base_port}")
        baseline = start_server("baseline", [sys.executable, str(HERE / "baseline.py"), "--host", HOST, "--port",
                                             str(base_port), "--workers", str(a.workers)], benv, base_port,
                                self.workdir, "/health")
        self.servers.append(baseline)
        self.sanity(nexus, baseline, setup)

        configs = self.write_configs(setup)
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in ORDER}
        for rnd in range(a.rounds):
            for key in ORDER:
                title, target, _mode = SCENARIOS[key]
                server = nexus if target == "nexus" else baseline
                if a.warmup > 0:
                    run_wrk(self.wrk, server.base, configs[key], threads=a.threads, connections=a.connections,
                            duration=a.warmup)
                load_before = os.getloadavg()[0]
                r = run_wrk(self.wrk, server.base, configs[key], threads=a.threads, connections=a.connections,
                            duration=a.duration)
                r["title"] = title
                r["loadavg_1m"] = [load_before, os.getloadavg()[0]]
                runs[key].append(r)
                errs = sum(r["errors"].values())
                if errs:
                    r["sample_failure"] = self.probe(server, key, setup)
                lat = r["latency_ms"]
                tag = f" round {rnd + 1}/{a.rounds}" if a.rounds > 1 else ""
                log(f"{self.dialect}:{tag} ({key}) {title:<42} {r['rps']:>9.1f} req/s  p50 {lat['p50']:.2f}  "
                    f"p95 {lat['p95']:.2f}  p99 {lat['p99']:.2f} ms"
                    + (f"  ERRORS {r['errors']}; one request now: {r['sample_failure']}" if errs else ""))
        # With several rounds, each scenario reports its median round (by req/s).
        scen: dict[str, Any] = {}
        for key, rs in runs.items():
            med = dict(sorted(rs, key=lambda r: r["rps"])[len(rs) // 2])
            if len(rs) > 1:
                med["rounds"] = [{"rps": r["rps"], "latency_ms": r["latency_ms"], "errors": r["errors"]} for r in rs]
            scen[key] = med
        if nexus.proc.poll() is not None or baseline.proc.poll() is not None:
            raise BenchError(f"a server died during the run:\n{nexus.log_tail()}\n{baseline.log_tail()}")
        self.result = {"dialect": self.dialect, "tasks": a.tasks, "scenarios": scen,
                       "database_version": self.db_version(url), **evaluate(scen)}
        if a.profile:
            self.result["profile"] = self.profile(nexus, configs)
        return self.result

    # -- data ------------------------------------------------------------
    def prepare(self, nexus: Server, email: str, password: str, url: str) -> Setup:
        a = self.args
        tok = api("POST", nexus.base + "/api/v1/auth/token",
                  form={"grant_type": "password", "username": email, "password": password})
        token = tok["access_token"]
        me = api("GET", nexus.base + "/api/v1/identity/me", token)
        org_id, admin_id = me["org"]["id"], me["id"]
        assignees = []
        for i in range(a.assignees):
            u = api("POST", nexus.base + "/api/v1/identity/users", token,
                    {"email": f"bench-user-{i:02d}@example.com", "name": f"Bench User {i:02d}", "roles": ["member"]})
            assignees.append(u["id"])
        log(f"{self.dialect}: org {org_id}, {len(assignees)} users created; loading {a.tasks} tasks")
        t0 = time.perf_counter()
        rows = task_rows(a.tasks, org_id, admin_id, assignees)
        if self.dialect == "sqlite":
            load_sqlite(self.workdir / "nexus.db", rows, self.shape)
        else:
            asyncio.run(load_postgres(url, rows, self.shape))
        log(f"{self.dialect}: loaded {len(rows)} tasks and analysed in {time.perf_counter() - t0:.1f} s")
        rnd = random.Random(7)
        sample = [r["id"] for r in rnd.sample(rows, min(len(rows), 10_000))]
        return Setup(token, org_id, admin_id, assignees, sample)

    def db_version(self, url: str) -> str:
        if self.dialect == "sqlite":
            return "SQLite " + sqlite3.sqlite_version
        return str(asyncio.run(pg_admin(url, "SELECT version()")))

    def sanity(self, nexus: Server, baseline: Server, s: Setup) -> None:
        """One request per scenario, and the lists must agree: both sides do the same work."""
        tid, who, st = s.sample_ids[0], s.assignees[0], "todo"
        got = api("GET", f"{nexus.base}/api/v1/tasks/tasks/{tid}", s.token)
        bare = api("GET", f"{baseline.base}/tasks/{tid}")
        if got["id"] != tid or bare["id"] != tid:
            raise BenchError("the single-row reads returned the wrong task")
        q = urllib.parse.urlencode({"assignee_id": who, "status": st})
        lst = api("GET", f"{nexus.base}/api/v1/tasks/tasks?{q}&sort=due_at&limit=50", s.token)
        blst = api("GET", f"{baseline.base}/tasks?{q}")
        ids, bids = [t["id"] for t in lst["items"]], [t["id"] for t in blst["items"]]
        if len(ids) != 50 or ids != bids:
            raise BenchError(f"the 50-row lists differ or are short (NEXUS {len(ids)}, baseline {len(bids)})")
        due = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"title": "sanity", "assignee_id": who, "status": "todo", "due_at": due}
        api("POST", f"{nexus.base}/api/v1/tasks/tasks", s.token, body, expect=(201,))
        api("POST", f"{baseline.base}/tasks", None, body, expect=(201,))

    def probe(self, server: Server, key: str, s: Setup) -> str:
        """One request of the scenario, to show why wrk saw failures."""
        _title, target, mode = SCENARIOS[key]
        token = s.token if target == "nexus" else None
        prefix = "/api/v1/tasks/tasks" if target == "nexus" else "/tasks"
        if mode == "get":
            method, path, body = "GET", f"{prefix}/{random.choice(s.sample_ids)}", None
        elif mode == "list":
            q = urllib.parse.urlencode({"assignee_id": s.assignees[0], "status": "todo"})
            method, path, body = "GET", f"{prefix}?{q}" + ("&sort=due_at&limit=50" if target == "nexus" else ""), None
        else:
            method, path = "POST", prefix
            body = json.dumps({"title": "probe", "assignee_id": s.assignees[0], "status": "todo",
                               "due_at": "2030-01-01T00:00:00Z"}).encode()
        headers = {"Content-Type": "application/json"} if body else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            status, data = http(method, server.base + path, body=body, headers=headers)
        except OSError as exc:
            return f"{method} {path}: {exc}"
        return f"{method} {path} -> {status} {str(data)[:300]}"

    def write_configs(self, s: Setup) -> dict[str, Path]:
        common = {"assignees": s.assignees, "statuses": list(STATUSES), "due_base": int(time.time())}
        out = {}
        for key, (_title, target, mode) in SCENARIOS.items():
            cfg: dict[str, Any] = {"mode": mode, **common}
            if target == "nexus":
                cfg.update(token=s.token, get_path="/api/v1/tasks/tasks/",
                           list_path="/api/v1/tasks/tasks?assignee_id=%s&status=%s&sort=due_at&limit=50",
                           post_path="/api/v1/tasks/tasks")
            else:
                cfg.update(get_path="/tasks/", list_path="/tasks?assignee_id=%s&status=%s", post_path="/tasks")
            if mode == "get":
                cfg["ids"] = s.sample_ids
            path = self.workdir / f"wrk-{key}.lua"
            write_lua_config(path, cfg)
            out[key] = path
        return out

    # -- profiling -------------------------------------------------------
    def profile(self, nexus: Server, configs: dict[str, Path]) -> dict[str, Any]:
        a = self.args
        spy = shutil.which("py-spy", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                           os.environ.get("PATH", "")]))
        if spy is None:
            log("--profile: py-spy is not installed (pip install py-spy); skipping")
            return {}
        pids = nexus.children() or [nexus.proc.pid]
        out: dict[str, Any] = {}
        for key in ("a", "b", "c"):
            raw = self.workdir / f"profile-{key}.txt"
            dur = max(3, round(a.profile_seconds))
            spy_proc = subprocess.Popen(
                [spy, "record", "--pid", str(pids[-1]), "--rate", "200", "--duration", str(dur), "--format", "raw",
                 *([] if a.profile_lines else ["--function"]), "--output", str(raw)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.5)
            run_wrk(self.wrk, nexus.base, configs[key], threads=a.threads, connections=a.connections,
                    duration=dur + 1)
            try:
                _, err = spy_proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                spy_proc.kill()
                _, err = spy_proc.communicate()
            if not raw.exists():
                log(f"--profile: py-spy produced nothing for ({key}): {err.decode(errors='replace')[-500:]}")
                continue
            summary = summarise_profile(raw.read_text())
            dest = RESULTS / f"{a.stamp}-profile-{self.dialect}-{key}.txt"
            RESULTS.mkdir(exist_ok=True)
            shutil.copy(raw, dest)
            summary["collapsed_stacks"] = str(dest.relative_to(ROOT))
            out[key] = summary
            print_profile(f"{self.dialect} ({key}) {SCENARIOS[key][0]}", summary)
        return out


def nexus_cmd() -> list[str]:
    script = Path(sys.executable).parent / "nexus"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from nexus.kernel.cli import main; main()"]


# ------------------------------------------------------------------ profile summary

_FRAME = re.compile(r"^(?P<fn>.+?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    line = m.group("line")
    return f"{m.group('fn')} ({path}{':' + line if line else ''})"


def summarise_profile(text: str, top: int = 20) -> dict[str, Any]:
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    pct = (lambda c: round(100.0 * c / total, 1)) if total else (lambda c: 0.0)
    return {
        "samples": total,
        "self": [(f, pct(c)) for f, c in own.most_common(top)],
        "inclusive": [(f, pct(c)) for f, c in incl.most_common(top * 3)
                      if "nexus/" in f or "starlette" in f or "pydantic" in f or "jwt" in f][:top],
    }


def print_profile(title: str, s: dict[str, Any]) -> None:
    print(f"\n  profile {title}: {s['samples']} samples")
    print("    self time (where the CPU is):")
    for f, p in s["self"][:15]:
        print(f"      {p:5.1f} %  {f}")
    print("    inclusive (NEXUS, starlette, pydantic, jwt frames):")
    for f, p in s["inclusive"][:15]:
        print(f"      {p:5.1f} %  {f}")


# ------------------------------------------------------------------ results


def evaluate(scen: dict[str, Any]) -> dict[str, Any]:
    ratios = {}
    for name, num, den in RATIOS:
        d = scen[den]["rps"]
        value = scen[num]["rps"] / d if d else 0.0
        valid = not sum(scen[num]["errors"].values()) and not sum(scen[den]["errors"].values())
        ratios[name] = {"value": value, "target": TARGETS[name], "pass": valid and value >= TARGETS[name]}
    p95 = {k: {"value": scen[k]["latency_ms"]["p95"], "limit": P95_LIMIT_MS,
               "pass": scen[k]["latency_ms"]["p95"] < P95_LIMIT_MS and not sum(scen[k]["errors"].values())}
           for k in ("a", "b", "c")}
    clean = all(sum(scen[k]["errors"].values()) == 0 for k in scen)
    passed = clean and all(r["pass"] for r in ratios.values()) and all(p["pass"] for p in p95.values())
    return {"ratios": ratios, "p95": p95, "no_errors": clean, "pass": passed}


def print_table(res: dict[str, Any], args: argparse.Namespace) -> None:
    name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[res["dialect"]]
    print(f"\n{name} ({res['database_version'][:60]}) — {res['tasks']:,} tasks, {args.connections} connections, "
          f"{args.workers} worker(s), {args.duration:g} s per scenario"
          + (f", median of {args.rounds} rounds" if args.rounds > 1 else ""))
    print(f"  {'scenario':<48} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for key in ("a", "b", "c", "d", "e", "f"):
        r = res["scenarios"][key]
        lat = r["latency_ms"]
        print(f"  ({key}) {r['title']:<44} {r['rps']:>9.1f} {lat['p50']:>8.2f} {lat['p95']:>8.2f} "
              f"{lat['p99']:>8.2f} {sum(r['errors'].values()):>7}")
    for rname, r in res["ratios"].items():
        print(f"  {rname} = {100 * r['value']:5.1f} %   target ≥ {100 * r['target']:.0f} %   "
              f"{'PASS' if r['pass'] else 'FAIL'}")
    for key, p in res["p95"].items():
        print(f"  p95 ({key}) = {p['value']:6.2f} ms  target < {p['limit']:.0f} ms  {'PASS' if p['pass'] else 'FAIL'}")
    if not res["no_errors"]:
        print("  some requests failed (see errors) — the run is not valid")


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=False).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                                    text=True, check=False).stdout.strip())
    except OSError:
        commit, dirty = "", False
    versions: dict[str, str | None] = {}
    for mod in ("granian", "asyncpg", "orjson", "starlette", "pydantic"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:
            versions[mod] = None
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
        "python": platform.python_version(), "loadavg_at_start": os.getloadavg(),
        "git_commit": commit + ("-dirty" if dirty else ""), "versions": versions,
        "nexus_source": str(Path(str(__import__("nexus").__file__)).parent),
    }


# ------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    p.add_argument("--tasks", type=int, default=None, help="tasks to load (default 100000; --quick 20000)")
    p.add_argument("--duration", type=float, default=None, help="seconds per scenario (default 10; --quick 3)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds before each (default 2; --quick 1)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--rounds", type=int, default=1,
                   help="run the six scenarios this many times, interleaved, and report each one's median round "
                        "(steadier ratios on a shared machine)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: leaves the cores to the server)")
    p.add_argument("--workers", type=int, default=1, help="server worker processes, same for NEXUS and baseline")
    p.add_argument("--assignees", type=int, default=20)
    p.add_argument("--quick", action="store_true", help="a short smoke run")
    p.add_argument("--profile", action="store_true",
                   help="afterwards, re-run (a), (b) and (c) under py-spy and print the hot spots (not timed)")
    p.add_argument("--profile-seconds", type=float, default=8.0)
    p.add_argument("--profile-lines", action="store_true", help="profile by line rather than by function")
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="an admin connection used to create and drop the benchmark database")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    p.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/<timestamp>.json")
    a = p.parse_args(argv)
    a.tasks = a.tasks if a.tasks is not None else (20_000 if a.quick else 100_000)
    a.duration = a.duration if a.duration is not None else (3.0 if a.quick else 10.0)
    a.warmup = a.warmup if a.warmup is not None else (1.0 if a.quick else 2.0)
    a.dbs = [d.strip() for d in a.db.split(",") if d.strip()]
    for d in a.dbs:
        if d not in ("sqlite", "postgresql"):
            p.error(f"--db takes sqlite and/or postgresql, not {d!r}")
    host = urllib.parse.urlsplit(a.pg_url).hostname
    if "postgresql" in a.dbs and host not in ("127.0.0.1", "localhost", "::1"):
        p.error(f"--pg-url must point at this machine (127.0.0.1), not {host!r}")
    if a.tasks < 3 * a.assignees * 50:
        p.error(f"--tasks must be at least {3 * a.assignees * 50} so that every list has 50 rows")
    a.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return a


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    try:
        wrk = ensure_wrk()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    info = machine_info()
    log(f"{info['cpus']} CPUs ({info['cpu_model']}), load average {info['loadavg_at_start']}; "
        f"{args.tasks} tasks, {args.connections} connections, {args.duration:g} s per scenario")
    if info["loadavg_at_start"][0] > 0.5 * (info["cpus"] or 1):
        log("note: the machine is busy (load average above half the cores): expect noisy numbers")
    tmp = Path(tempfile.mkdtemp(prefix="nexus-bench-"))
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    started = time.monotonic()
    try:
        for dialect in args.dbs:
            run = DbRun(dialect, tmp / dialect, args, wrk)
            try:
                results[dialect] = run.run()
            except BenchError as exc:
                failures[dialect] = str(exc)
                log(f"{dialect}: FAILED: {exc}")
            finally:
                run.cleanup()
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for res in results.values():
        print_table(res, args)
    for dialect, msg in failures.items():
        print(f"\n{dialect}: the run failed: {msg.splitlines()[0]}")
    all_pass = bool(results) and not failures and all(r["pass"] for r in results.values())
    print(f"\noverall: {'PASS' if all_pass else 'FAIL'}  ({time.monotonic() - started:.0f} s)")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"{args.stamp}.json"
        doc = {"started_at": args.stamp, "machine": info,
               "settings": {k: getattr(args, k) for k in ("tasks", "duration", "warmup", "connections", "threads",
                                                          "workers", "assignees", "quick", "rounds")},
               "targets": {"ratios": TARGETS, "p95_ms": P95_LIMIT_MS},
               "results": results, "failures": failures, "pass": all_pass}
        out.write_text(json.dumps(doc, indent=2, default=str))
        print(f"results: {out.relative_to(ROOT)}")
    if failures:
        return 2
    return 1 if args.check and not all_pass else 0


if __name__ == "__main__":
    sys.exit(main())
