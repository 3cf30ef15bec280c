"""OpenID Connect in a real browser: an application sends the person to NEXUS, the web app
signs them in and sends them back to the consent page, they allow, the application gets a
code it exchanges (with PKCE) for tokens. And the admin page that registers applications."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from .conftest import ADMIN, Server, shot, sign_in

pytestmark = pytest.mark.e2e


def test_an_application_signs_a_person_in_through_nexus(page: Any, server: Server) -> None:
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    admin = server.token(*ADMIN)
    callback = f"{server.url}/rp-callback"
    rp = server.api("POST", "/api/v1/identity/oauth-clients", admin,
                    json={"name": "Team wiki", "redirect_uris": [callback], "scopes": ["openid", "profile", "email"]})
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(8)
    url = "/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": rp["client_id"], "redirect_uri": callback, "scope": "openid email",
        "state": state, "nonce": "n-1", "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256"})
    page.goto(url)
    page.get_by_role("heading", name="Sign in").wait_for()  # the web app's own sign-in page
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", name="Allow Team wiki to use your account?").wait_for()
    assert "See your email address" in page.content()
    shot(page, "oidc-01-consent")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(lambda u: u.startswith(callback + "?"))
    back = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert back["state"] == state
    r = httpx.post(server.url + "/oauth/token", data={"grant_type": "authorization_code", "code": back["code"],
                                                       "redirect_uri": callback, "code_verifier": verifier},
                   auth=(rp["client_id"], rp["client_secret"]))
    assert r.status_code == 200, r.text
    assert r.json()["id_token"] and r.json()["access_token"]
    # Signed in and consented: the next request comes straight back with a code.
    page.goto(url)
    page.wait_for_url(lambda u: u.startswith(callback + "?code="))


def test_admin_registers_an_application_and_sees_the_secret_once(page: Any, server: Server) -> None:
    sign_in(page, *ADMIN)
    page.goto("/admin/applications")
    page.get_by_role("heading", name="Applications").wait_for()
    page.get_by_role("button", name="Register application").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("Reporting")
    dialog.get_by_label("Redirect URIs", exact=True).fill("https://reports.example.com/cb")
    dialog.get_by_label("Redirect URIs", exact=True).press("Enter")
    dialog.get_by_role("button", name="Register").click()
    secret = page.get_by_test_id("secret-client_secret")
    secret.wait_for()
    assert secret.inner_text().startswith("nxcs_")
    shot(page, "oidc-02-client-secret-once")
    page.get_by_role("button", name="I have saved it").click()
    row = page.get_by_role("row", name="Reporting")
    row.wait_for()
    assert "nxcs_" not in page.content()
    row.get_by_role("button", name="Rotate secret").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate secret").click()
    page.get_by_test_id("secret-client_secret").wait_for()
    page.get_by_role("button", name="I have saved it").click()
    shot(page, "oidc-03-applications")
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete application").click()
    row.wait_for(state="detached")
