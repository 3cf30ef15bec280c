"""NEXUS as SAML identity provider, for pysaml2's own service provider (its own keys,
configured only from NEXUS's IdP metadata): SP registration, SSO over the redirect and POST
bindings with the NEXUS browser session, signed responses and assertions with the name id
and attributes, and the refusals."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from saml2 import BINDING_HTTP_POST

from nexus.apps.identity.federation.saml import xmlsec_available
from nexus.kernel.http.app import Nexus
from tests.apps.identity.saml_peers import PeerSP
from tests.factories import PASSWORD, Actor, audit_rows, new_org

pytestmark = pytest.mark.skipif(not xmlsec_available(),
                                reason="xmlsec1 is not installed (make test installs it: scripts/xmlsec1.sh)")

SP_ENTITY = "https://wiki.example.test/saml/metadata"


def browser(nx: Nexus) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=nx, client=("203.0.113.40", 5000)),
                             base_url="http://nexus.test")


@dataclass
class IdP:
    owner: Actor
    sp: PeerSP
    record: dict[str, object]

    @property
    def entity(self) -> str:
        return f"http://nexus.test/api/v1/identity/federation/{self.owner.org_slug}/saml/idp/metadata"


@pytest_asyncio.fixture
async def idp(client: httpx.AsyncClient, nx: Nexus) -> AsyncIterator[IdP]:
    owner = await new_org(client, nx)
    r = await client.get(f"/api/v1/identity/federation/{owner.org_slug}/saml/idp/metadata")
    assert r.status_code == 200 and "IDPSSODescriptor" in r.text and 'use="signing"' in r.text
    sp = PeerSP(SP_ENTITY, r.text)
    r = await owner.post("/api/v1/identity/saml-sps", json={"name": "Team wiki", "metadata_xml": sp.metadata()})
    assert r.status_code == 201, r.text
    assert r.json()["entity_id"] == SP_ENTITY and r.json()["acs_url"] == sp.acs
    try:
        yield IdP(owner, sp, r.json())
    finally:
        sp.close()


async def sign_in_browser(b: httpx.AsyncClient, email: str, org: str) -> None:
    r = await b.post("/api/v1/auth/session", json={"username": email, "password": PASSWORD, "org": org})
    assert r.status_code == 200, r.text


def posted_form(page: str) -> dict[str, str]:
    action = re.search(r'action="([^"]+)"', page)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page))
    assert action is not None
    return {"action": html.unescape(action.group(1)), **{k: html.unescape(v) for k, v in fields.items()}}


async def test_sso_with_a_signed_in_browser_gives_a_signed_assertion(nx: Nexus, idp: IdP) -> None:
    req_id, url = idp.sp.login_url(idp.entity, relay_state="wiki-page-42")
    assert url.startswith(f"{idp.entity.rsplit('/', 1)[0]}/sso?")
    async with browser(nx) as b:
        await sign_in_browser(b, idp.owner.email, idp.owner.org_slug)
        r = await b.get(url.removeprefix("http://nexus.test"))
        assert r.status_code == 200, r.text
        form = posted_form(r.text)
    assert form["action"] == idp.sp.acs and form["RelayState"] == "wiki-page-42"
    xml = base64.b64decode(form["SAMLResponse"]).decode()
    # both the response and the assertion inside it carry a signature
    assert len(re.findall(r"<\w+:Signature[ >]", xml)) == 2
    assert re.search(r"<\w+:Assertion [^>]*>\s*<\w+:Issuer[^>]*>[^<]*</\w+:Issuer>\s*<\w+:Signature[ >]", xml)
    # the SP (wanting signed responses and signed assertions) accepts it
    resp = idp.sp.client.parse_authn_request_response(form["SAMLResponse"], BINDING_HTTP_POST, {req_id: "/"})
    assert resp is not None and resp.assertion is not None
    assert resp.name_id.text == idp.owner.email
    assert resp.ava["email"] == [idp.owner.email]
    assert "owner" in resp.ava["roles"]
    assert resp.issuer() == idp.entity
    rows = await audit_rows(nx, idp.owner.org_id, action="assertion_issued")
    assert rows[-1]["record_id"] == idp.record["id"] and rows[-1]["after"]["user_id"] == idp.owner.user_id


async def test_sso_without_a_session_goes_through_the_sign_in_page(nx: Nexus, idp: IdP) -> None:
    req_id, url = idp.sp.login_url(idp.entity)
    async with browser(nx) as b:
        r = await b.get(url.removeprefix("http://nexus.test"))
        assert r.status_code == 303
        loc = urlsplit(r.headers["location"])
        assert loc.path == "/signin"
        q = parse_qs(loc.query)
        assert q["org"] == [idp.owner.org_slug]
        resume = q["next"][0]
        assert resume.startswith(f"/api/v1/identity/federation/{idp.owner.org_slug}/saml/idp/resume/")
        # still not signed in: back to the sign-in page, the request kept
        assert (await b.get(resume)).status_code == 303
        await sign_in_browser(b, idp.owner.email, idp.owner.org_slug)
        r = await b.get(resume)
        assert r.status_code == 200, r.text
        form = posted_form(r.text)
        resp = idp.sp.client.parse_authn_request_response(form["SAMLResponse"], BINDING_HTTP_POST, {req_id: "/"})
        assert resp.name_id.text == idp.owner.email
        r = await b.get(resume)  # once only
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")


async def test_post_binding(nx: Nexus, idp: IdP) -> None:
    req_id, info = idp.sp.client.prepare_for_authenticate(entityid=idp.entity, binding=BINDING_HTTP_POST,
                                                          relay_state="rs")
    page = info["data"]
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page))
    async with browser(nx) as b:
        await sign_in_browser(b, idp.owner.email, idp.owner.org_slug)
        r = await b.post(f"/api/v1/identity/federation/{idp.owner.org_slug}/saml/idp/sso",
                         data={"SAMLRequest": html.unescape(fields["SAMLRequest"]), "RelayState": "rs"})
        assert r.status_code == 200, r.text
        form = posted_form(r.text)
    resp = idp.sp.client.parse_authn_request_response(form["SAMLResponse"], BINDING_HTTP_POST, {req_id: "/"})
    assert resp.ava["email"] == [idp.owner.email]


async def test_a_user_of_another_org_is_not_signed_in_here(nx: Nexus, idp: IdP) -> None:
    stranger = await new_org(idp.owner.client, nx)
    _req_id, url = idp.sp.login_url(idp.entity)
    async with browser(nx) as b:
        await sign_in_browser(b, stranger.email, stranger.org_slug)
        r = await b.get(url.removeprefix("http://nexus.test"))
        assert r.status_code == 303 and r.headers["location"].startswith("/signin?")


async def test_unregistered_sp_and_bad_requests_are_refused(nx: Nexus, idp: IdP) -> None:
    idp_md = (await idp.owner.client.get(f"/api/v1/identity/federation/{idp.owner.org_slug}/saml/idp/metadata")).text
    rogue = PeerSP("https://rogue.example.test/saml/metadata", idp_md)
    try:
        _req_id, url = rogue.login_url(idp.entity)
        async with browser(nx) as b:
            await sign_in_browser(b, idp.owner.email, idp.owner.org_slug)
            r = await b.get(url.removeprefix("http://nexus.test"))
            assert r.status_code == 400 and r.json()["reason"] == "invalid_request", r.text
            sso = f"/api/v1/identity/federation/{idp.owner.org_slug}/saml/idp/sso"
            assert (await b.get(sso)).status_code == 400
            r = await b.get(sso, params={"SAMLRequest": "not-deflated-anything"})
            assert r.status_code == 400 and r.json()["reason"] == "invalid_request"
        rows = await audit_rows(nx, idp.owner.org_id, action="federated_sign_in_refused")
        assert rows[-1]["after"]["protocol"] == "saml-idp"
    finally:
        rogue.close()


async def test_sp_registration_validation(idp: IdP) -> None:
    o = idp.owner
    r = await o.post("/api/v1/identity/saml-sps", json={"name": "Again", "metadata_xml": idp.sp.metadata()})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/metadata_xml"
    r = await o.post("/api/v1/identity/saml-sps", json={"name": "Broken", "metadata_xml": "<x>" + "y" * 40 + "</x>"})
    assert r.status_code == 422
    member = await o.add_user(["member"])
    r = await member.post("/api/v1/identity/saml-sps", json={"name": "M", "metadata_xml": idp.sp.metadata()})
    assert r.status_code == 403
    other = await new_org(o.client, o.nx)
    assert (await other.get(f"/api/v1/identity/saml-sps/{idp.record['id']}")).status_code == 404
    # disabling the registration stops SSO for it
    r = await o.patch(f"/api/v1/identity/saml-sps/{idp.record['id']}", json={"enabled": False})
    assert r.status_code == 200
    _req_id, url = idp.sp.login_url(idp.entity)
    async with browser(o.nx) as b:
        await sign_in_browser(b, o.email, o.org_slug)
        r = await b.get(url.removeprefix("http://nexus.test"))
        assert r.status_code == 400 and r.json()["reason"] == "unknown_sp"


async def test_the_post_page_is_locked_down_and_acs_must_be_a_web_address(nx: Nexus, idp: IdP) -> None:
    _req_id, url = idp.sp.login_url(idp.entity, relay_state='"><script>alert(1)</script>')
    async with browser(nx) as b:
        await sign_in_browser(b, idp.owner.email, idp.owner.org_slug)
        r = await b.get(url.removeprefix("http://nexus.test"))
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "form-action https://wiki.example.test" in csp
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
    assert f'<script nonce="{nonce}">' in r.text and "<script>alert(1)" not in r.text
    assert posted_form(r.text)["RelayState"] == '"><script>alert(1)</script>'
    evil = idp.sp.metadata().replace(idp.sp.acs, "javascript:alert(document.cookie)")
    evil = evil.replace(SP_ENTITY, "https://evil.example.test/md")
    r = await idp.owner.post("/api/v1/identity/saml-sps", json={"name": "Evil", "metadata_xml": evil})
    assert r.status_code == 422 and "http(s) URL" in r.json()["errors"][0]["detail"]
