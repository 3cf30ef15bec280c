"""An independent SCIM checker (scim2-tester, from the python-scim project) drives a live
NEXUS server over HTTP: discovery, and create / read / query / replace / patch / delete of
Users and Groups with values it makes up from the schemas the server publishes."""

from __future__ import annotations

import asyncio

import httpx
import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from nexus.kernel.config import Settings
from nexus.kernel.http.app import Nexus
from tests.apps.identity.scim_helpers import SCIM, connect_scim, live_server


def _run_checker(base: str, token: str) -> list:
    http = httpx2.Client(base_url=base + SCIM, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    try:
        client = SyncSCIMClient(http)
        client.discover()
        return check_server(client, raise_exceptions=False)
    finally:
        http.close()


async def test_scim2_tester_passes_against_a_live_server(client: httpx.AsyncClient, nx: Nexus,
                                                         settings: Settings) -> None:
    scim = await connect_scim(client, nx)
    with live_server(settings) as base:
        results = await asyncio.to_thread(_run_checker, base, scim.token)
    failed = [r for r in results if r.status not in (Status.SUCCESS, Status.SKIPPED)]
    report = "\n".join(f"{r.status.name} {r.title}: {r.reason}" for r in failed)
    assert len(results) > 30, [r.title for r in results]
    assert not failed, report
    passed = [r for r in results if r.status == Status.SUCCESS]
    for tag in ("discovery", "crud:create", "crud:read", "crud:update", "crud:delete", "patch:add", "patch:replace",
                "patch:remove"):
        assert any(tag in (r.tags or set()) for r in passed), f"no {tag} check passed"
