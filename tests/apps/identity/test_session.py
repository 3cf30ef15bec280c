"""Browser sessions: cookies, CSRF, rotation, sign-out."""

from __future__ import annotations

import httpx

from nexus.kernel.http.app import Nexus
from tests.factories import PASSWORD, new_org


def browser(nx: Nexus) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=nx, client=("203.0.113.9", 5000)),
                             base_url="http://nexus.test")


async def test_cookie_sign_in_csrf_refresh_and_sign_out(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    async with browser(nx) as b:
        r = await b.post("/api/v1/auth/session", json={"username": owner.email, "password": "wrong password!"})
        assert r.status_code == 400 and r.json()["detail"] == "Wrong email or password."
        r = await b.post("/api/v1/auth/session", json={"username": owner.email, "password": PASSWORD},
                         headers={"Origin": "https://evil.test"})
        assert r.status_code == 403
        r = await b.post("/api/v1/auth/session", json={"username": owner.email, "password": PASSWORD},
                         headers={"Origin": "http://nexus.test"})
        assert r.status_code == 200, r.text
        assert r.json()["user"]["email"] == owner.email
        cookies = {c.name: c for c in b.cookies.jar}
        assert set(cookies) == {"nexus_access", "nexus_refresh", "nexus_csrf"}
        assert cookies["nexus_access"].has_nonstandard_attr("HttpOnly")
        assert not cookies["nexus_csrf"].has_nonstandard_attr("HttpOnly")
        assert cookies["nexus_refresh"].path == "/api/v1/auth/session"
        csrf = cookies["nexus_csrf"].value
        assert (await b.get("/api/v1/identity/me")).status_code == 200
        assert (await b.post("/api/v1/tasks/tasks", json={"title": "no csrf"})).status_code == 403
        r = await b.post("/api/v1/tasks/tasks", json={"title": "with csrf"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201
        assert (await b.post("/api/v1/auth/session/refresh")).status_code == 403
        old_access = b.cookies.get("nexus_access")
        old_refresh = b.cookies.get("nexus_refresh", path="/api/v1/auth/session")
        r = await b.post("/api/v1/auth/session/refresh", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        assert b.cookies.get("nexus_refresh", path="/api/v1/auth/session") != old_refresh
        csrf = b.cookies.get("nexus_csrf")
        r = await b.request("DELETE", "/api/v1/auth/session", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 204
        assert (await b.get("/api/v1/identity/me", cookies={"nexus_access": old_access or ""})).status_code == 401
