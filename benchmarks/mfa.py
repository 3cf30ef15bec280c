"""What a second factor costs at sign-in: latency of the password step, the MFA step (TOTP)
and a plain password sign-in, in one process over ASGI (no network), on SQLite.

    .venv/bin/python benchmarks/mfa.py                 # 40 sign-ins each, production argon2 parameters
    .venv/bin/python benchmarks/mfa.py --n 100 --fast-hash

The password step verifies an argon2id hash (RFC 9106 defaults unless --fast-hash), so it
dominates; the MFA step is a challenge lookup, a sealed-seed decrypt, three HMAC-SHA1 codes
and a compare-and-set, plus the session it opens. Prints p50/p95 in milliseconds and writes
benchmarks/results/<timestamp>-mfa.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(n: int) -> dict[str, Any]:
    import httpx
    import pyotp

    from nexus.apps.identity.public import create_admin
    from nexus.kernel import migrate
    from nexus.kernel.config import Settings
    from nexus.kernel.http.app import Nexus

    data = Path(tempfile.mkdtemp(prefix="nexus-bench-mfa-"))
    settings = Settings.from_env({"NEXUS_DATA_DIR": str(data), "NEXUS_SECRET_KEY": secrets.token_urlsafe(48),
                                  "NEXUS_LOG_LEVEL": "WARNING", "NEXUS_RATE_LIMITS": "off"})
    await asyncio.to_thread(migrate.upgrade, settings)
    nx = Nexus(settings, run_background=False)
    await nx.startup()
    password = "correct horse battery"
    await create_admin(nx.db, "plain@bench.test", password, "bench")
    await create_admin(nx.db, "mfa@bench.test", password, "bench")
    out: dict[str, list[float]] = {"password sign-in (no MFA)": [], "password step (MFA user)": [],
                                   "MFA step (TOTP)": [], "GET /identity/me": []}
    transport = httpx.ASGITransport(app=nx, client=("192.0.2.1", 1000))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as c:
        form = {"grant_type": "password", "username": "mfa@bench.test", "password": password}
        token = (await c.post("/api/v1/auth/token", data=form)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        enrol = (await c.post("/api/v1/identity/account/totp", json={}, headers=auth)).json()
        totp = pyotp.TOTP(enrol["secret"])
        last = [int(time.time() // 30) - 2]

        async def code() -> str:
            while True:
                now = int(time.time() // 30)
                step = max(last[0] + 1, now - 1)
                if step <= now + 1:
                    last[0] = step
                    return totp.at(step * 30)
                await asyncio.sleep(0.5)

        r = await c.post(f"/api/v1/identity/account/totp/{enrol['factor_id']}/confirm", json={"code": await code()},
                         headers=auth)
        assert r.status_code == 200, r.text
        plain = {"grant_type": "password", "username": "plain@bench.test", "password": password}
        for _ in range(n):
            t = time.perf_counter()
            r = await c.post("/api/v1/auth/token", data=plain)
            out["password sign-in (no MFA)"].append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
            t = time.perf_counter()
            r = await c.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
            out["GET /identity/me"].append((time.perf_counter() - t) * 1000)
        # Each TOTP time step is good once: at most three sign-ins per 30 s, so this part waits.
        for _ in range(min(n, 6)):
            t = time.perf_counter()
            r = await c.post("/api/v1/auth/token", data=form)
            out["password step (MFA user)"].append((time.perf_counter() - t) * 1000)
            assert r.status_code == 403
            otp = await code()
            t = time.perf_counter()
            r = await c.post("/api/v1/auth/token", data={"grant_type": "mfa", "mfa_token": r.json()["mfa_token"],
                                                         "otp": otp})
            out["MFA step (TOTP)"].append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
    await nx.shutdown()
    return {k: {"n": len(v), "p50_ms": round(statistics.median(v), 2), "p95_ms": round(pct(v, 95), 2)}
            for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--fast-hash", action="store_true", help="argon2 with test parameters (as the test suite)")
    a = p.parse_args(argv)
    if a.fast_hash:
        os.environ["NEXUS_PASSWORD_HASH"] = "fast"
    results = asyncio.run(run(a.n))
    print(f"{'measure':32} {'n':>4} {'p50 ms':>9} {'p95 ms':>9}")
    for k, v in results.items():
        print(f"{k:32} {v['n']:>4} {v['p50_ms']:>9} {v['p95_ms']:>9}")
    folder = ROOT / "benchmarks" / "results"
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (folder / f"{stamp}-mfa.json").write_text(json.dumps({
        "benchmark": "mfa", "argon2": "fast" if a.fast_hash else "rfc9106-defaults", "machine": platform.platform(),
        "cpus": os.cpu_count(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
