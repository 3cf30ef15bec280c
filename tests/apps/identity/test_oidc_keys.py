"""Signing keys: sealed at rest, rotated by `nexus oidc rotate-keys`, old keys verify until
their tokens have expired, then leave the JWKS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

from nexus.kernel.crypto import SecretBox
from nexus.kernel.http.app import Nexus
from tests.apps.identity.oidc_helpers import register_client
from tests.factories import new_org

NEXUS = str(Path(sys.executable).parent / "nexus")


def _kid(token: str) -> str:
    import jwt

    return str(jwt.get_unverified_header(token)["kid"])


async def test_rotation_keeps_old_tokens_valid_until_the_old_key_expires(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    svc = await register_client(owner, grant_types=["client_credentials"], redirect_uris=[], scopes=["api"])
    auth = (svc["client_id"], svc["client_secret"])

    async def issue() -> str:
        r = await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    old = await issue()
    old_kid = _kid(old)
    async with nx.db.reader() as conn:
        sealed = await conn.fetchval("SELECT private_sealed FROM identity_oidc_key WHERE id = ?", [old_kid])
    assert '"d"' not in sealed and "private" not in sealed  # sealed, not a JWK in clear
    assert "d" in json.loads(SecretBox(nx.settings.secret_key, "oidc-signing-keys").open(sealed))

    # The operator rotates from the command line, in another process.
    s = nx.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env.update({"NEXUS_DATA_DIR": str(s.data_dir), "NEXUS_SECRET_KEY": s.secret_key,
                "NEXUS_DATABASE_URL": s.database_url, "NEXUS_LOG_LEVEL": "WARNING"})
    done = subprocess.run([NEXUS, "oidc", "rotate-keys"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    new_kid = done.stdout.split("signing with key ", 1)[1].split(";", 1)[0]
    assert new_kid != old_kid and old_kid in done.stdout

    await nx.state["identity.oidc"].keys.reload()
    kids = [k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]]
    assert old_kid in kids and new_kid in kids
    fresh = await issue()
    assert _kid(fresh) == new_kid
    for token in (old, fresh):
        assert (await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200

    # Once the retired key's grace period is over it leaves the JWKS and verifies nothing.
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE identity_oidc_key SET expires_at = ? WHERE id = ?",
                           [nx.db.ts(datetime(2000, 1, 1, tzinfo=UTC)), old_kid])
    await nx.state["identity.oidc"].keys.reload()
    nx.auth.invalidate_all()
    kids = [k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]]
    assert old_kid not in kids and new_kid in kids
    assert (await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {old}"})).status_code == 401
    assert (await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {fresh}"})).status_code == 200


async def test_the_daily_purge_removes_only_what_can_never_be_used(client: httpx.AsyncClient, nx: Nexus) -> None:
    from datetime import timedelta

    from nexus.apps.identity.oidc.provider import purge_expired
    from nexus.apps.identity.oidc.routes import PURGE_JOB

    assert PURGE_JOB in nx.state["jobs"].types
    owner = await new_org(client, nx)
    svc = await register_client(owner, grant_types=["client_credentials"], redirect_uris=[], scopes=["api"])
    auth = (svc["client_id"], svc["client_secret"])
    live = (await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)).json()
    old = (await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)).json()
    import jwt

    old_gid = jwt.decode(old["access_token"], options={"verify_signature": False})["gid"]
    live_gid = jwt.decode(live["access_token"], options={"verify_signature": False})["gid"]
    long_ago = nx.db.ts(datetime.now(UTC) - timedelta(days=3))
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE identity_oauth_grant SET expires_at = ? WHERE id = ?", [long_ago, old_gid])
    counts = await purge_expired(nx.db)
    assert counts["grants"] >= 1
    async with nx.db.reader() as conn:
        assert await conn.fetchval("SELECT count(*) FROM identity_oauth_grant WHERE id = ?", [old_gid]) == 0
        assert await conn.fetchval("SELECT count(*) FROM identity_oauth_grant WHERE id = ?", [live_gid]) == 1
    r = await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {live['access_token']}"})
    assert r.status_code == 200
