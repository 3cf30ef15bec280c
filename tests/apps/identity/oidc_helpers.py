"""Helpers for the OpenID Connect tests: register clients, act as a signed-in browser."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from nexus.kernel.http.app import Nexus
from tests.factories import PASSWORD, Actor


async def register_client(admin: Actor, **fields: Any) -> dict[str, Any]:
    body = {"name": "Relying party", "redirect_uris": ["https://rp.example.com/cb"],
            "post_logout_redirect_uris": ["https://rp.example.com/bye"],
            "scopes": ["openid", "profile", "email", "offline_access", "api", "tasks.tasks.read"], **fields}
    r = await admin.post("/api/v1/identity/oauth-clients", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@asynccontextmanager
async def signed_in_browser(nx: Nexus, actor: Actor, base_url: str = "http://nexus.test",
                            transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A browser holding the web app's cookie session for the actor."""
    async with httpx.AsyncClient(transport=transport or httpx.ASGITransport(app=nx, client=("203.0.113.50", 5000)),
                                 base_url=base_url) as b:
        r = await b.post("/api/v1/auth/session", json={"username": actor.email, "password": PASSWORD,
                                                       "org": actor.org_slug})
        assert r.status_code == 200, r.text
        yield b


def consent_form(html: str) -> dict[str, str]:
    """The hidden fields of the consent page, as a person's browser would send them."""
    fields = dict(re.findall(r'<input type=hidden name=(\w+) value="([^"]*)">', html))
    return {k: unescape(v) for k, v in fields.items()}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def consent_and_get_code(browser: httpx.AsyncClient, authorize_url: str, allow: bool = True) -> httpx.Response:
    """Open the authorization URL; if NEXUS asks for consent, answer it. Returns the final
    redirect to the relying party (not followed)."""
    r = await browser.get(authorize_url)
    if r.status_code == 200 and "Allow" in r.text:
        form = consent_form(r.text)
        form["decision"] = "allow" if allow else "deny"
        r = await browser.post("/oauth/authorize", data=form)
    return r
