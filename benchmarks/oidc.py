"""OpenID Connect provider speed: client-credentials issuance and token validation per request.

    .venv/bin/python benchmarks/oidc.py                       # SQLite and PostgreSQL
    .venv/bin/python benchmarks/oidc.py --db sqlite --n 1000

In one process (the ASGI app called directly, no network, no client library), on a fresh
database per back end:

    (i) POST /oauth/token, grant_type=client_credentials, Basic auth: sign an RS256 access
        token, write its grant and the audit entry. Latency p50/p95/p99 (target: p95 < 30 ms).
    (g) GET /api/v1/tasks/tasks/{id} with a pre-validated identity: the principal is put in
        the request scope by a wrapper, so no token is looked at. The baseline.
    (w) the same GET with an OIDC access token, principal cache warm (the usual case: a
        client reuses its token; entries live 5 s and are dropped on any revocation).
    (v) the same GET with an OIDC access token validated from scratch on every request
        (cache cleared before each): RS256 signature, claims, grant + user + client query,
        roles query.
    (k) the same GET with the kernel's own HS256 session token, also validated every time.

Rounds interleave the variants so drift hits all alike; the overhead is median(x)/median(g) - 1
(target for (w) and (v): < 10 %). Prints a table and writes benchmarks/results/<ts>-oidc.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("NEXUS_PASSWORD_HASH", "fast")

from nexus.apps.identity.public import create_admin  # noqa: E402
from nexus.kernel import migrate  # noqa: E402
from nexus.kernel.config import Settings  # noqa: E402
from nexus.kernel.http.app import Nexus  # noqa: E402

PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS = ROOT / "benchmarks" / "results"


async def pg_admin(sql: str) -> None:
    import asyncpg

    con = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await con.execute(sql)
    finally:
        await con.close()


class Call:
    """Calls the ASGI app directly and returns (status, body)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes = b"",
                       principal: Any = None) -> tuple[int, bytes]:
        scope: dict[str, Any] = {
            "type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000), "server": ("nexus.bench", 80), "scheme": "http",
            "http_version": "1.1", "root_path": "",
        }
        if principal is not None:
            scope["nexus.principal"] = principal  # a pre-validated identity
        sent = False
        out: dict[str, Any] = {"status": 0, "body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                out["status"] = msg["status"]
            elif msg["type"] == "http.response.body":
                out["body"] += msg.get("body", b"")

        await self.app(scope, receive, send)
        return out["status"], out["body"]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def bench_db(db: str, n: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="nexus-bench-oidc-"))
    env = {"NEXUS_DATA_DIR": str(data_dir), "NEXUS_SECRET_KEY": secrets.token_urlsafe(48), "NEXUS_LOG_LEVEL": "ERROR",
           "NEXUS_RATE_LIMITS": ",".join(f"{c}=1000000000/60" for c in ("read", "write", "auth", "bulk"))}
    db_name = None
    if db == "postgresql":
        db_name = f"nexus_bench_oidc_{secrets.token_hex(4)}"
        await pg_admin(f'CREATE DATABASE "{db_name}"')
        env["NEXUS_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    settings = Settings.from_env(env)
    try:
        await asyncio.to_thread(migrate.upgrade, settings)
        nx = Nexus(settings, run_background=False)
        await nx.startup()
        try:
            return await _measure(nx, n)
        finally:
            await nx.shutdown()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if db_name:
            await pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


async def _measure(nx: Nexus, n: int) -> dict[str, Any]:
    call = Call(nx)
    await create_admin(nx.db, "bench@example.com", "bench-password-1", "bench")
    form = b"grant_type=password&username=bench%40example.com&password=bench-password-1"
    ctype = {"content-type": "application/x-www-form-urlencoded"}
    status, body = await call("POST", "/api/v1/auth/token", ctype, form)
    assert status == 200, body
    session_token = json.loads(body)["access_token"]
    admin = {"authorization": f"Bearer {session_token}", "content-type": "application/json"}
    status, body = await call("POST", "/api/v1/identity/oauth-clients", admin, json.dumps({
        "name": "bench", "grant_types": ["client_credentials"], "redirect_uris": [], "scopes": ["api"],
        "service_roles": ["member"]}).encode())
    assert status == 201, body
    client = json.loads(body)
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    token_headers = {**ctype, "authorization": f"Basic {basic}"}
    cc_form = b"grant_type=client_credentials"
    status, body = await call("POST", "/api/v1/tasks/tasks", admin, b'{"title": "benchmark task"}')
    assert status == 201, body
    task_path = f"/api/v1/tasks/tasks/{json.loads(body)['id']}"

    for _ in range(50):  # warm up: key loaded, statements prepared, caches filled
        status, body = await call("POST", "/oauth/token", token_headers, cc_form)
        assert status == 200, body
    issue: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        status, body = await call("POST", "/oauth/token", token_headers, cc_form)
        issue.append((time.perf_counter() - t) * 1000)
        assert status == 200, body
    oidc_token = json.loads(body)["access_token"]
    oidc = {"authorization": f"Bearer {oidc_token}"}
    kernel = {"authorization": f"Bearer {session_token}"}
    principal = await nx.auth.authenticate(nx.db, f"Bearer {oidc_token}")

    async def g() -> int:
        return (await call("GET", task_path, {}, principal=principal))[0]

    async def w() -> int:
        return (await call("GET", task_path, oidc))[0]

    async def v() -> int:
        nx.auth.cache.clear()
        return (await call("GET", task_path, oidc))[0]

    async def k() -> int:
        nx.auth.cache.clear()
        return (await call("GET", task_path, kernel))[0]

    variants = {"g": g, "w": w, "v": v, "k": k}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        for _ in range(50):
            assert await fn() == 200
    rounds = 20
    per = max(1, n // rounds)
    for _ in range(rounds):
        for name, fn in variants.items():
            for _ in range(per):
                t = time.perf_counter()
                status = await fn()
                times[name].append((time.perf_counter() - t) * 1000)
                assert status == 200
    med = {name: statistics.median(x) for name, x in times.items()}
    return {
        "issuance_ms": {"p50": pct(issue, 50), "p95": pct(issue, 95), "p99": pct(issue, 99), "n": len(issue)},
        "get_ms": {name: {"p50": med[name], "p95": pct(x, 95)} for name, x in times.items()},
        "overhead": {name: med[name] / med["g"] - 1 for name in ("w", "v", "k")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--n", type=int, default=1000, help="requests per measurement (default 1000)")
    args = ap.parse_args()
    out: dict[str, Any] = {"when": datetime.now(UTC).isoformat(), "machine": platform.node(),
                           "cpus": os.cpu_count(), "load": os.getloadavg(), "results": {}}
    for db in [d.strip() for d in args.db.split(",") if d.strip()]:
        res = asyncio.run(bench_db(db, args.n))
        out["results"][db] = res
        i, gm, ov = res["issuance_ms"], res["get_ms"], res["overhead"]
        print(f"\n{db}: client-credentials issuance p50 {i['p50']:.2f} ms, p95 {i['p95']:.2f} ms, "
              f"p99 {i['p99']:.2f} ms  (target p95 < 30 ms: {'met' if i['p95'] < 30 else 'MISSED'})")
        print(f"  GET one task, median: pre-validated {gm['g']['p50']:.3f} ms | OIDC token, cache warm "
              f"{gm['w']['p50']:.3f} ms ({ov['w']:+.1%}) | OIDC token validated each time {gm['v']['p50']:.3f} ms "
              f"({ov['v']:+.1%}) | kernel HS256 token validated each time {gm['k']['p50']:.3f} ms ({ov['k']:+.1%})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-oidc.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwritten to {path.relative_to(ROOT)} (load {out['load'][0]:.1f})")


if __name__ == "__main__":
    main()
