"""Sign in with an external identity provider, in a real browser: Chromium on the sign-in page
clicks "Sign in with <IdP>", goes through a real OIDC provider (its own port and keys) and
lands in the Hub, provisioned with the mapped role; the admin sees the provider on the
Single sign-on page."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.apps.identity.oidc_peer import OidcPeer

from .conftest import ADMIN, Server, shot, sign_in

pytestmark = pytest.mark.e2e


def test_sign_in_with_an_oidc_provider(page: Any, server: Server) -> None:
    admin = server.token(*ADMIN)
    slug = "idp" + secrets.token_hex(3)
    secret = secrets.token_urlsafe(24)
    with OidcPeer("nexus-e2e", secret) as peer:
        peer.redirect_uris.add(f"{server.url}/api/v1/identity/federation/default/oidc/{slug}/callback")
        server.api("POST", "/api/v1/identity/identity-providers", admin, json={
            "slug": slug, "name": "Acme SSO", "protocol": "oidc", "issuer": peer.issuer, "client_id": "nexus-e2e",
            "client_secret": secret, "role_map": [{"claim": "groups", "value": "it-admins", "role": "admin"}]})
        email = f"grace-{secrets.token_hex(3)}@acme.test"
        peer.user = {"sub": "acme|" + secrets.token_hex(4), "email": email, "email_verified": True,
                     "name": "Grace Hopper", "groups": ["it-admins"]}

        page.goto("/signin?org=default")
        button = page.get_by_role("link", name="Sign in with Acme SSO")
        button.wait_for()
        shot(page, "federation-01-sign-in-with-idp")
        button.click()
        page.get_by_role("combobox", name="Search everything").wait_for()
        me = page.evaluate("fetch('/api/v1/identity/me').then(r => r.json())")
        assert me["email"] == email and me["name"] == "Grace Hopper" and "admin" in me["roles"]
        shot(page, "federation-02-signed-in-through-idp")

    page.context.clear_cookies()
    sign_in(page, *ADMIN)
    page.goto("/admin/sso")
    page.get_by_role("heading", name="Single sign-on").wait_for()
    page.get_by_role("cell", name=f"Acme SSO ({slug})").wait_for()
    shot(page, "federation-03-admin-providers")
    page.get_by_role("tab", name="SAML").click()
    page.get_by_label("IdP metadata URL", exact=True).wait_for()
    shot(page, "federation-04-admin-saml")
