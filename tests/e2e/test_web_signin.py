"""The NEXUS web app signs in through its own OpenID Connect provider: after the sign-in
page, the browser goes through /oauth/authorize (client nexus-web, PKCE S256) and the page
trades the code at /api/v1/auth/session/code for its cookie session."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import ADMIN, Server, shot

pytestmark = pytest.mark.e2e


def test_the_web_app_session_comes_from_an_authorization_code(page: Any, server: Server) -> None:
    seen: list[Any] = []
    page.on("request", lambda r: seen.append(r))
    page.goto("/r/tasks/tasks")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("combobox", name="Search everything").wait_for()
    # Back where the person was, not on the callback.
    page.wait_for_url(lambda u: urlsplit(u).path == "/r/tasks/tasks")
    shot(page, "web-signin-01-after-code-flow")

    authorize = [r for r in seen if urlsplit(r.url).path == "/oauth/authorize"]
    assert len(authorize) == 1 and authorize[0].is_navigation_request()
    q = {k: v[0] for k, v in parse_qs(urlsplit(authorize[0].url).query).items()}
    assert q["client_id"] == "nexus-web" and q["code_challenge_method"] == "S256"
    assert q["redirect_uri"] == f"{server.url}/auth/callback" and len(q["code_challenge"]) == 43 and q["state"]
    callback = [r for r in seen if urlsplit(r.url).path == "/auth/callback"]
    assert callback and parse_qs(urlsplit(callback[0].url).query)["state"] == [q["state"]]
    exchange = [r for r in seen if urlsplit(r.url).path == "/api/v1/auth/session/code"]
    assert len(exchange) == 1 and exchange[0].method == "POST"
    body = json.loads(exchange[0].post_data)
    assert body["code"] == parse_qs(urlsplit(callback[0].url).query)["code"][0]
    assert body["code_verifier"] and body["redirect_uri"] == q["redirect_uri"]
    assert exchange[0].response().status == 200
    # The order: sign-in step, then authorize, then the exchange.
    order = [urlsplit(r.url).path for r in seen]
    assert order.index("/api/v1/auth/session") < order.index("/oauth/authorize") < order.index(
        "/api/v1/auth/session/code")
    # The cookie session works for reads and CSRF-protected writes.
    page.reload()
    page.get_by_role("combobox", name="Search everything").wait_for()


def test_a_forged_callback_is_refused(page: Any, server: Server) -> None:
    page.goto("/")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("combobox", name="Search everything").wait_for()
    # An answer this tab did not ask for (wrong state) is refused and the sign-in ends.
    page.goto("/auth/callback?code=forged&state=forged")
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_text("not started here").wait_for()
    page.goto("/")
    page.get_by_role("heading", name="Sign in").wait_for()
