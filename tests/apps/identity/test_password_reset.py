"""Password reset by emailed link, delivered to a real SMTP server (aiosmtpd) that the test
starts; the test reads the message as a mail client would and follows its link."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest_asyncio
from aiosmtpd.controller import Controller

from nexus.kernel import migrate
from nexus.kernel.config import Settings
from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import utcnow
from tests.conftest import _pg_admin, make_settings
from tests.factories import PASSWORD, audit_rows, client_at, free_port, new_org, token_for

PUBLIC = "https://nexus.example"
RESET = "/api/v1/auth/password-reset"


class Inbox:
    """What the SMTP server received: whole messages, parsed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            msg = email.message_from_bytes(envelope.original_content or envelope.content)
            msg["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
            self.messages.append(msg)
        return "250 Message accepted for delivery"

    async def wait_for(self, to: str, count: int = 1, timeout: float = 15.0) -> list[Message]:
        for _ in range(int(timeout * 10)):
            found = [m for m in self.messages if m["To"] == to]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"no mail to {to} after {timeout}s ({len(self.messages)} messages in all)")


@dataclasses.dataclass
class MailWorld:
    nx: Nexus
    client: httpx.AsyncClient
    inbox: Inbox


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(backend: str) -> AsyncIterator[MailWorld]:
    """A NEXUS of its own (its own database, so that no other test's worker picks up its mail
    jobs) configured with NEXUS_SMTP_URL pointing at a local aiosmtpd."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    data_dir = Path(tempfile.mkdtemp(prefix="nexus-reset-"))
    db_name = f"nexus_reset_{os.getpid()}_{secrets.token_hex(3)}" if backend == "postgresql" else None
    if db_name:
        await _pg_admin(f'CREATE DATABASE "{db_name}"')
    base: Settings = make_settings(backend, data_dir, db_name)
    settings = dataclasses.replace(base, smtp_url=f"smtp://127.0.0.1:{port}", public_url=PUBLIC,
                                   mail_from="NEXUS <nexus@nexus.example>")
    await asyncio.to_thread(migrate.upgrade, settings)
    nx = Nexus(settings)
    await nx.startup()
    transport = httpx.ASGITransport(app=nx, client=("192.0.2.50", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://nexus.test") as client:
        yield MailWorld(nx, client, inbox)
    await nx.shutdown()
    controller.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
    if db_name:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def link_of(msg: Message) -> str:
    body = msg.get_payload(decode=True)
    assert isinstance(body, bytes)
    found = re.findall(r"https?://\S+", body.decode())
    assert len(found) == 1, body
    return str(found[0])


def token_of(link: str) -> str:
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC and parts.path == "/reset-password"
    return parse_qs(parts.query)["token"][0]


async def test_reset_by_mailed_link_sets_the_password_and_ends_every_session(world: MailWorld) -> None:
    nx, client, inbox = world.nx, world.client, world.inbox
    owner = await new_org(client, nx)
    member = await owner.add_user()
    r = await client.post(RESET, json={"email": member.email.upper()})
    assert r.status_code == 202
    [msg] = await inbox.wait_for(member.email)
    assert msg["Subject"] == "Reset your NEXUS password" and msg["From"] == "NEXUS <nexus@nexus.example>"
    assert msg["X-Envelope-To"] == member.email and msg["Auto-Submitted"] == "auto-generated"
    link = link_of(msg)
    token = token_of(link)
    # The token is nowhere in the database: the reset row holds its hash, the job a sealed link.
    async with nx.db.reader() as conn:
        jobs = [str(r[0]) for r in await conn.fetch("SELECT payload FROM kernel_job WHERE name = 'identity.send-password-reset'")]
        resets = [str(r) for r in await conn.fetch("SELECT * FROM identity_password_reset")]
    assert jobs and not any(token.split("_", 2)[2] in j for j in jobs + resets)
    # The policy applies to the new password; a refusal leaves the link usable.
    r = await client.post(f"{RESET}/confirm", json={"token": token, "password": "password123"})
    assert r.status_code == 422 and "common" in r.text
    r = await client.post(f"{RESET}/confirm", json={"token": token, "password": PASSWORD})
    assert r.status_code == 422 and "used recently" in r.text  # the history covers the current password
    r = await client.post(f"{RESET}/confirm", json={"token": token, "password": "a brand new passphrase"},
                          headers={"User-Agent": "MailClient/1.0"})
    assert r.status_code == 204, r.text
    assert (await member.get("/api/v1/identity/me")).status_code == 401  # every session ended
    assert (await token_for(client, member.email, org=member.org_slug)).status_code == 400
    assert (await token_for(client, member.email, "a brand new passphrase", member.org_slug)).status_code == 200
    # Replaying the link fails, and is audited.
    r = await client.post(f"{RESET}/confirm", json={"token": token, "password": "yet another passphrase"})
    assert r.status_code == 400 and r.json()["type"].endswith("/invalid-reset-token")
    refused = await audit_rows(nx, owner.org_id, action="password_reset_refused")
    assert refused[-1]["after"]["reason"] == "already used"
    history = (await owner.get(f"/api/v1/identity/users/{member.user_id}/sign-ins",
                               params={"method": "password_reset"})).json()["items"]
    assert [h["success"] for h in history] == [False, True]


async def test_unknown_addresses_look_the_same_and_get_no_mail(world: MailWorld) -> None:
    nx, client, inbox = world.nx, world.client, world.inbox
    owner = await new_org(client, nx)
    ghost = f"ghost-{secrets.token_hex(3)}@nowhere.test"
    r1 = await client.post(RESET, json={"email": ghost})
    r2 = await client.post(RESET, json={"email": owner.email})
    assert r1.status_code == r2.status_code == 202 and r1.json() == r2.json()
    await inbox.wait_for(owner.email)
    assert not [m for m in inbox.messages if m["To"] == ghost]


async def test_links_expire_newer_links_void_older_ones_and_requests_are_limited(world: MailWorld) -> None:
    nx, client, inbox = world.nx, world.client, world.inbox
    owner = await new_org(client, nx)
    async with client_at(nx) as c:
        for _ in range(4):
            assert (await c.post(RESET, json={"email": owner.email, "org": owner.org_slug})).status_code == 202
        mails = await inbox.wait_for(owner.email, 3)
        await asyncio.sleep(0.5)
        assert len([m for m in inbox.messages if m["To"] == owner.email]) == 3  # the 4th was throttled
        assert await audit_rows(nx, owner.org_id, action="password_reset_throttled")
        # Jobs may deliver in any order: the database says which link is the newest.
        tokens = [token_of(link_of(m)) for m in mails]
        async with nx.db.reader() as conn:
            live = [t for t in tokens if await conn.fetchval(
                "SELECT 1 FROM identity_password_reset WHERE id = ? AND used_at IS NULL", [t[4:30]])]
        assert len(live) == 1
        latest = live[0]
        voided = next(t for t in tokens if t != latest)
        r = await c.post(f"{RESET}/confirm", json={"token": voided, "password": "fresh passphrase 1"})
        assert r.status_code == 400  # voided by the newer one
        async with nx.db.transaction() as conn:
            await conn.execute("UPDATE identity_password_reset SET expires_at = ? WHERE id = ?",
                               [nx.db.ts(utcnow() - timedelta(seconds=1)), latest[4:30]])
        r = await c.post(f"{RESET}/confirm", json={"token": latest, "password": "fresh passphrase 1"})
        assert r.status_code == 400
        assert (await audit_rows(nx, owner.org_id, action="password_reset_refused"))[-1]["after"]["reason"] == "expired"
        for bad in ({}, {"token": "nxp_x"}, {"token": 5, "password": "x"}, {"token": "nxp_" + "A" * 26 + "_zz",
                                                                             "password": "whatever long"}):
            r = await c.post(f"{RESET}/confirm", json=bad)
            assert r.status_code in (400, 422) and r.headers["content-type"] == "application/problem+json"
        assert (await c.post(RESET, json={})).status_code == 422
        assert (await c.post(RESET, content=b"email=x", headers={"Content-Type": "text/plain"})).status_code == 415
        statuses = [(await c.post(RESET, json={"email": f"x{i}@nowhere.test"})).status_code for i in range(10)]
        assert statuses[-1] == 429 and 202 in statuses  # per address


async def test_reset_needs_smtp_configured(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await client.post(RESET, json={"email": owner.email})
    assert r.status_code == 503 and "NEXUS_SMTP_URL" in r.json()["detail"]
