"""SAML in a real browser, both directions, with pysaml2 on the other side served over HTTP:
(1) Chromium signs in to NEXUS with "Sign in with <IdP>" through a SAML IdP; (2) an outside
application (a SAML SP) sends Chromium to NEXUS, which asks it to sign in, then posts the
signed assertion back to the application."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from saml2 import BINDING_HTTP_POST

from tests.apps.identity.saml_peers import LoopbackServer, PeerIdP, PeerSP, auto_post_page, b64

from .conftest import ADMIN, Server, shot

pytestmark = pytest.mark.e2e


def test_sign_in_to_nexus_through_a_saml_idp(page: Any, server: Server) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    admin = server.token(*ADMIN)
    prefix = f"{server.url}/api/v1/identity/federation/default/saml"
    http = LoopbackServer()
    peer = PeerIdP(f"{http.url}/metadata", [httpx.get(f"{prefix}/metadata").text])
    email = f"ada-{secrets.token_hex(3)}@corp.test"

    async def sso(req: Request) -> HTMLResponse:
        req_id, relay, args = peer.read_request(str(req.url))
        xml = peer.response_xml(in_response_to=req_id, destination=args["destination"],
                                sp_entity_id=args["sp_entity_id"], email=email, attributes={"groups": ["staff"]})
        return HTMLResponse(auto_post_page(args["destination"], {"SAMLResponse": b64(xml), "RelayState": relay}))

    http.start(Starlette(routes=[Route("/sso", sso)]))
    try:
        slug = "corp" + secrets.token_hex(2)
        server.api("POST", "/api/v1/identity/identity-providers", admin, json={
            "slug": slug, "name": "Corp SAML", "protocol": "saml", "saml_metadata_xml": peer.metadata()})
        page.goto("/signin?org=default")
        page.get_by_role("link", name="Sign in with Corp SAML").click()
        page.get_by_role("combobox", name="Search everything").wait_for()
        me = page.evaluate("fetch('/api/v1/identity/me').then(r => r.json())")
        assert me["email"] == email and me["roles"] == ["member"]
        shot(page, "federation-05-signed-in-through-saml")
    finally:
        http.stop()
        peer.close()


def test_an_outside_app_signs_in_with_nexus_as_saml_idp(page: Any, server: Server) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    admin = server.token(*ADMIN)
    idp_md = httpx.get(f"{server.url}/api/v1/identity/federation/default/saml/idp/metadata").text
    http = LoopbackServer()
    sp = PeerSP(f"{http.url}/metadata", idp_md)
    outstanding: dict[str, str] = {}
    idp_entity = f"{server.url}/api/v1/identity/federation/default/saml/idp/metadata"

    async def login(req: Request) -> Response:
        req_id, url = sp.login_url(idp_entity, relay_state="wiki")
        outstanding[req_id] = "/"
        return RedirectResponse(url, 302)

    async def acs(req: Request) -> HTMLResponse:
        form = {k: v[0] for k, v in parse_qs((await req.body()).decode()).items()}
        resp = sp.client.parse_authn_request_response(form["SAMLResponse"], BINDING_HTTP_POST, outstanding)
        who = resp.ava["email"][0]
        return HTMLResponse(f"<html><body><h1>Welcome to the wiki, {who}</h1>"
                            f"<p>roles: {', '.join(resp.ava['roles'])}; relay: {form.get('RelayState')}</p></body></html>")

    http.start(Starlette(routes=[Route("/login", login), Route("/acs", acs, methods=["POST"])]))
    try:
        server.api("POST", "/api/v1/identity/saml-sps", admin, json={"name": "Wiki", "metadata_xml": sp.metadata()})
        page.goto(f"{http.url}/login")
        page.get_by_role("heading", name="Sign in").wait_for()
        shot(page, "federation-06-nexus-asks-to-sign-in-for-saml-app")
        page.get_by_label("Email").fill(ADMIN[0])
        page.get_by_label("Password").fill(ADMIN[1])
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.get_by_role("heading", name=f"Welcome to the wiki, {ADMIN[0]}").wait_for()
        assert "owner" in page.inner_text("body") and "relay: wiki" in page.inner_text("body")
        shot(page, "federation-07-saml-app-signed-in")
        # already signed in now: straight through
        page.goto(f"{http.url}/login")
        page.get_by_role("heading", name=f"Welcome to the wiki, {ADMIN[0]}").wait_for()
    finally:
        http.stop()
        sp.close()
