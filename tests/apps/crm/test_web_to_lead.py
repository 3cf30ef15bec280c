"""The public web-to-lead endpoint: per-form token, origin allow-list, rate limit, honeypot
and minimum fill time — each refusal is a clear 4xx that creates nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from nexus.kernel.http.app import Nexus
from tests.apps.crm.helpers import CRM
from tests.factories import Actor, audit_rows, client_at, new_org

SITE = "https://www.shop.example"


async def _form(owner: Actor, **fields: Any) -> dict[str, Any]:
    r = await owner.post(f"{CRM}/web-forms", json={"name": "Contact us", "allowed_origins": [SITE],
                                                   "source": "website", **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _leads(owner: Actor) -> list[dict[str, Any]]:
    return (await owner.get(f"{CRM}/leads", params={"limit": 500})).json()["items"]  # type: ignore[no-any-return]


async def test_web_form_creates_a_lead(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rep = await owner.add_user()
    await owner.post(f"{CRM}/assignment-rules", json={"name": "All", "user_ids": [rep.user_id]})
    form = await _form(owner, min_fill_seconds=1)
    assert len(form["token"]) >= 32
    url = f"{CRM}/web-to-lead/{form['token']}"
    async with client_at(nx) as browser:
        pre = await browser.options(url, headers={"Origin": SITE, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == SITE
        r = await browser.get(f"{url}/ticket", headers={"Origin": SITE})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SITE
        ticket = r.json()["ticket"]
        r = await browser.post(url, json={"name": "Eager Bot", "ticket": ticket}, headers={"Origin": SITE})
        assert r.status_code == 422 and r.json()["type"].endswith("spam")
        await asyncio.sleep(1.1)
        r = await browser.post(url, data={"name": "Rosa Parks", "email": "rosa@example.org", "message": "Call me",
                                          "ticket": ticket, "website_url": ""}, headers={"Origin": SITE})
        assert r.status_code == 201, r.text
    leads = await _leads(owner)
    assert [(x["name"], x["source"], x["owner_id"]) for x in leads] == [("Rosa Parks", "website", rep.user_id)]
    rows = await audit_rows(nx, owner.org_id, action="lead_received")
    assert rows and rows[0]["after"]["lead_id"] == leads[0]["id"]


async def test_web_form_refusals_change_nothing(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    form = await _form(owner, min_fill_seconds=0, rate_per_hour=50)
    url = f"{CRM}/web-to-lead/{form['token']}"
    async with client_at(nx) as browser:
        ok = {"Origin": SITE}
        cases = [
            (url.replace(form["token"], "x" * 32), {"name": "A"}, ok, 404),
            (url.replace(form["token"], "../../etc"), {"name": "A"}, ok, 404),
            (url, {"name": "A"}, {}, 403),
            (url, {"name": "A"}, {"Origin": "https://evil.example"}, 403),
            (url, {"name": "A", "website_url": "http://spam.example"}, ok, 422),
            (url, {"name": ""}, ok, 422),
            (url, {"name": "A", "is_admin": True}, ok, 422),
        ]
        for target, body, headers, status in cases:
            r = await browser.post(target, json=body, headers=headers)
            assert r.status_code == status, (body, headers, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        r = await browser.post(url, content=b"<xml/>", headers={**ok, "Content-Type": "application/xml"})
        assert r.status_code == 415
    assert await _leads(owner) == []
    # A form with a minimum fill time needs a real ticket: none, or a forged one, is refused.
    slow = await _form(owner, min_fill_seconds=2)
    async with client_at(nx) as browser:
        for ticket in ("", "1000.deadbeef", "99999999999999999999.x"):
            r = await browser.post(f"{CRM}/web-to-lead/{slow['token']}", json={"name": "A", "ticket": ticket},
                                   headers={"Origin": SITE})
            assert r.status_code == 422, r.text
    # Rate limit per form and address (refused attempts count too).
    limited = await _form(owner, min_fill_seconds=0, rate_per_hour=3)
    url = f"{CRM}/web-to-lead/{limited['token']}"
    async with client_at(nx) as browser:
        codes = [(await browser.post(url, json={"name": f"Lead {i}"}, headers={"Origin": SITE})).status_code
                 for i in range(5)]
    assert codes[:3] == [201, 201, 201] and codes[3:] == [429, 429]
    assert len(await _leads(owner)) == 3
    # A deactivated form is gone.
    await owner.patch(f"{CRM}/web-forms/{limited['id']}", json={"active": False})
    async with client_at(nx) as browser:
        r = await browser.post(url, json={"name": "Late"}, headers={"Origin": SITE})
    assert r.status_code == 404
