"""Webhooks: signed deliveries verified by an independent Standard Webhooks library,
retries, the delivery log, redelivery, disabling, and the SSRF guard."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from nexus.kernel.http.app import Nexus
from nexus.kernel.webhooks import Blocked, WebhookConfig, _forbidden_address, check_url, resolve_safely
from tests.factories import Actor, make_task, new_org
from tests.kernel.test_events import wait_for


@dataclass
class Receiver:
    """A real HTTP server on loopback whose answers the test scripts."""

    plan: list[str] = field(default_factory=list)  # "ok", "500", "sleep", "redirect" — then "ok" forever
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: asyncio.base_events.Server | None = None
    port: int = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server:
            self.server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((headers, body))
            mode = self.plan.pop(0) if self.plan else "ok"
            if mode == "sleep":
                await asyncio.sleep(5)
                return
            status = {"ok": "200 OK", "500": "500 Internal Server Error", "redirect": "302 Found"}[mode]
            extra = "Location: http://10.0.0.1/steal\r\n" if mode == "redirect" else ""
            writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: 2\r\nConnection: close\r\n\r\nok".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receiver(nx: Nexus):  # type: ignore[no-untyped-def]
    r = Receiver()
    await r.start()
    cfg = WebhookConfig(max_attempts=3, retry_base=0.05, disable_after=4, timeout=1.0, allow=("127.0.0.1",))
    sender = nx.state["webhooks.sender"]
    old = (nx.state["webhooks.config"], sender.cfg)
    nx.state["webhooks.config"] = sender.cfg = cfg
    yield r
    nx.state["webhooks.config"], sender.cfg = old
    await r.stop()


async def subscribe(owner: Actor, url: str, types: list[str] | None = None) -> dict[str, Any]:
    r = await owner.post("/api/v1/webhooks/subscriptions", json={"url": url,
                                                                  "event_types": types or ["nexus.tasks.task.*"]})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def deliveries(owner: Actor, hook_id: str) -> list[dict[str, Any]]:
    r = await owner.get("/api/v1/webhooks/deliveries", params={"webhook_id": hook_id})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_signed_delivery_verifies_with_standard_webhooks(client: httpx.AsyncClient, nx: Nexus,
                                                               receiver: Receiver) -> None:
    owner = await new_org(client, nx)
    hook = await subscribe(owner, receiver.url)
    assert hook["secret"].startswith("whsec_") and "secret_enc" not in hook
    got = (await owner.get(f"/api/v1/webhooks/subscriptions/{hook['id']}")).json()
    assert "secret" not in got and "secret_enc" not in got
    task = await make_task(owner, title="hooked")

    async def arrived() -> list[Any]:
        return [r for r in receiver.requests if task["id"].encode() in r[1]]

    (headers, body), = await wait_for(arrived)
    event = StandardWebhook(hook["secret"]).verify(body, headers)  # raises if the signature is wrong
    assert event["type"] == "nexus.tasks.task.created" and event["data"]["record"]["title"] == "hooked"
    assert headers["user-agent"].startswith("NEXUS-Webhooks")
    with pytest.raises(Exception):
        StandardWebhook(hook["secret"]).verify(body + b" ", headers)

    async def logged() -> list[dict[str, Any]]:
        return [d for d in await deliveries(owner, hook["id"]) if d["status"] == "succeeded"]

    d = (await wait_for(logged))[0]
    assert d["last_status_code"] == 200 and d["attempts"] == 1


async def test_retries_then_succeeds_and_redelivery(client: httpx.AsyncClient, nx: Nexus, receiver: Receiver) -> None:
    owner = await new_org(client, nx)
    hook = await subscribe(owner, receiver.url, ["nexus.tasks.project.created"])
    receiver.plan = ["500", "500"]
    await owner.post("/api/v1/tasks/projects", json={"name": "retried"})

    async def done() -> list[dict[str, Any]]:
        return [d for d in await deliveries(owner, hook["id"]) if d["status"] == "succeeded"]

    d = (await wait_for(done))[0]
    assert d["attempts"] == 3 and len(receiver.requests) == 3
    ids = {h["webhook-id"] for h, _ in receiver.requests}
    assert len(ids) == 1, "the same message id on every retry"
    r = await owner.post(f"/api/v1/webhooks/deliveries/{d['id']}/redeliver")
    assert r.status_code == 202

    async def again() -> bool:
        return len(receiver.requests) == 4

    await wait_for(again)


async def test_bad_receivers_do_not_stick_and_disable_the_hook(client: httpx.AsyncClient, nx: Nexus,
                                                              receiver: Receiver) -> None:
    owner = await new_org(client, nx)
    hook = await subscribe(owner, receiver.url, ["nexus.tasks.label.created"])
    receiver.plan = ["sleep", "redirect", "500", "500", "500", "500"]
    await owner.post("/api/v1/tasks/labels", json={"name": "a"})
    await owner.post("/api/v1/tasks/labels", json={"name": "b"})

    async def disabled() -> dict[str, Any] | None:
        h = (await owner.get(f"/api/v1/webhooks/subscriptions/{hook['id']}")).json()
        return h if not h["enabled"] else None

    h = await wait_for(disabled, 90)  # retries with back-off; generous for a loaded CI box
    assert "failed attempts" in h["disabled_reason"]
    log = await deliveries(owner, hook["id"])
    errors = [a["error"] for d in log for a in d["history"]]
    assert any("timed out" in (e or "") for e in errors), errors
    assert any("not followed" in (e or "") for e in errors), errors
    notes = (await owner.get("/api/v1/notifications")).json()["items"]
    assert any(n["type"] == "webhooks.disabled" for n in notes)
    r = await owner.patch(f"/api/v1/webhooks/subscriptions/{hook['id']}", json={"enabled": True})
    assert r.status_code == 200 and r.json()["consecutive_failures"] == 0


async def test_redirect_is_reported_not_followed(client: httpx.AsyncClient, nx: Nexus, receiver: Receiver) -> None:
    owner = await new_org(client, nx)
    hook = await subscribe(owner, receiver.url, ["nexus.tasks.project.created"])
    receiver.plan = ["redirect"]
    await owner.post("/api/v1/tasks/projects", json={"name": "redirected"})

    async def failed_once() -> list[dict[str, Any]]:
        return [d for d in await deliveries(owner, hook["id"]) if d["last_error"]]

    d = (await wait_for(failed_once))[0]
    assert "redirect to http://10.0.0.1/steal not followed" in d["last_error"]


async def test_subscriptions_are_for_admins_and_targets_are_checked(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    r = await member.post("/api/v1/webhooks/subscriptions", json={"url": "https://example.com/h",
                                                                   "event_types": ["nexus.*"]})
    assert r.status_code == 403
    assert (await member.get("/api/v1/webhooks/deliveries")).status_code == 403
    for url in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x",
                "http://10.1.2.3/", "ftp://example.com/", "http://user:pw@example.com/", "not a url"):
        r = await owner.post("/api/v1/webhooks/subscriptions", json={"url": url, "event_types": ["nexus.*"]})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["errors"][0]["pointer"] == "/url"
    r = await owner.post("/api/v1/webhooks/subscriptions", json={"url": "http://x.test/", "event_types": ["NOT VALID"]})
    assert r.status_code == 422


@pytest.mark.parametrize("addr", ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "::1",
                                  "fe80::1", "::ffff:127.0.0.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "fc00::1"])
def test_private_and_reserved_addresses_are_forbidden(addr: str) -> None:
    assert _forbidden_address(ipaddress.ip_address(addr))


def test_public_addresses_are_allowed() -> None:
    assert not _forbidden_address(ipaddress.ip_address("93.184.216.34"))
    assert not _forbidden_address(ipaddress.ip_address("2606:4700::1111"))


async def test_resolution_is_checked_and_allow_list_applies() -> None:
    cfg = WebhookConfig()
    with pytest.raises(Blocked):
        await resolve_safely(cfg, "localhost", 80)
    with pytest.raises(Blocked):
        await resolve_safely(cfg, "127.0.0.2", 80)
    assert await resolve_safely(replace(cfg, allow=("127.0.0.0/8",)), "127.0.0.2", 80) == "127.0.0.2"
    assert await resolve_safely(replace(cfg, allow=("localhost",)), "localhost", 80) in ("127.0.0.1", "::1")
    with pytest.raises(Blocked):
        check_url("gopher://example.com/")


async def test_webhooks_are_described_in_meta_for_admins_only(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    apps = {a["name"]: a for a in (await owner.get("/api/v1/meta")).json()["apps"]}
    hooks = apps["webhooks"]["resources"][0]
    assert hooks["path"] == "/api/v1/webhooks/subscriptions" and hooks["permissions"]["create"] is True
    assert "secret_enc" not in {f["name"] for f in hooks["fields"]}
    assert "webhooks" not in {a["name"] for a in (await member.get("/api/v1/meta")).json()["apps"]}
