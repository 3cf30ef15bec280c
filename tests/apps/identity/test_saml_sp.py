"""NEXUS as SAML service provider, against pysaml2's own IdP (its own keys, configured only
from NEXUS's SP metadata): SP- and IdP-initiated sign-in, encrypted assertions, JIT
provisioning with role mapping, and every refusal the brief lists, each audited."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from nexus.apps.identity.federation.saml import xmlsec_available
from nexus.kernel.http.app import Nexus
from tests.apps.identity.saml_peers import PeerIdP, b64
from tests.factories import Actor, audit_rows, new_org

pytestmark = pytest.mark.skipif(not xmlsec_available(),
                                reason="xmlsec1 is not installed (make test installs it: scripts/xmlsec1.sh)")

IDP_ENTITY = "https://idp.example.test/saml/metadata"


def browser(nx: Nexus) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=nx, client=("203.0.113.20", 5000)),
                             base_url="http://nexus.test")


@dataclass
class Setup:
    owner: Actor
    peer: PeerIdP
    sp_entity: str
    acs: str
    idp: dict[str, object]

    @property
    def prefix(self) -> str:
        return f"/api/v1/identity/federation/{self.owner.org_slug}/saml"


@pytest_asyncio.fixture
async def saml(client: httpx.AsyncClient, nx: Nexus) -> AsyncIterator[Setup]:
    owner = await new_org(client, nx)
    prefix = f"/api/v1/identity/federation/{owner.org_slug}/saml"
    r = await client.get(f"{prefix}/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/samlmetadata+xml")
    peer = PeerIdP(IDP_ENTITY, [r.text])
    r = await owner.post("/api/v1/identity/identity-providers", json={
        "slug": "okta", "name": "Okta", "protocol": "saml", "saml_metadata_xml": peer.metadata(),
        "role_map": [{"claim": "groups", "value": "nexus-admins", "role": "admin"}], "default_roles": ["member"]})
    assert r.status_code == 201, r.text
    try:
        yield Setup(owner, peer, f"http://nexus.test{prefix}/metadata", f"http://nexus.test{prefix}/acs", r.json())
    finally:
        peer.close()


async def start(b: httpx.AsyncClient, s: Setup, next_path: str = "/apps/tasks") -> tuple[str, str, dict[str, str]]:
    r = await b.get(f"{s.prefix}/okta/login", params={"next": next_path})
    assert r.status_code == 302, r.text
    return s.peer.read_request(r.headers["location"])


async def post(b: httpx.AsyncClient, s: Setup, xml: str, relay: str = "") -> httpx.Response:
    return await b.post(f"{s.prefix}/acs", data={"SAMLResponse": b64(xml), "RelayState": relay})


async def refused(nx: Nexus, s: Setup, r: httpx.Response, reason: str) -> None:
    assert r.status_code in (400, 403), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["reason"] == reason, r.json()
    assert "nexus_access" not in r.headers.get("set-cookie", "")
    rows = await audit_rows(nx, s.owner.org_id, action="federated_sign_in_refused")
    assert rows and rows[-1]["after"]["reason"] == reason and rows[-1]["after"]["protocol"] == "saml"


async def users_named(s: Setup, email: str) -> list[dict[str, object]]:
    r = await s.owner.get("/api/v1/identity/users", params={"email": email})
    return r.json()["items"]  # type: ignore[no-any-return]


# -- configuration ------------------------------------------------------------------------


async def test_sp_metadata_describes_signed_requests_and_encryption(client: httpx.AsyncClient, saml: Setup) -> None:
    md = (await client.get(f"{saml.prefix}/metadata")).text
    assert f'entityID="{saml.sp_entity}"' in md
    assert 'AuthnRequestsSigned="true"' in md and 'WantAssertionsSigned="true"' in md
    assert 'use="encryption"' in md and 'use="signing"' in md
    assert f'Location="{saml.acs}"' in md
    # the connection read entity id, SSO URL and certificate from the pasted IdP metadata
    assert saml.idp["saml_entity_id"] == IDP_ENTITY and saml.idp["saml_sso_url"] == saml.peer.sso_url
    assert "BEGIN CERTIFICATE" in str(saml.idp["saml_certificate"])
    r = await client.get(f"/api/v1/identity/federation/{saml.owner.org_slug}/providers")
    assert r.json()["items"] == [{"slug": "okta", "name": "Okta", "protocol": "saml",
                                  "login_url": f"{saml.prefix}/okta/login"}]
    assert r.json()["saml"]["sp_metadata_url"] == saml.sp_entity


async def test_bad_connection_config_is_refused(saml: Setup) -> None:
    o = saml.owner
    r = await o.post("/api/v1/identity/identity-providers", json={
        "slug": "bad", "name": "Bad", "protocol": "saml", "saml_metadata_xml": "<not-xml" + "x" * 30})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/saml_metadata_xml"
    r = await o.post("/api/v1/identity/identity-providers", json={
        "slug": "bomb", "name": "Bomb", "protocol": "saml",
        "saml_metadata_xml": '<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>'})
    assert r.status_code == 422
    r = await o.post("/api/v1/identity/identity-providers", json={
        "slug": "nocert", "name": "No cert", "protocol": "saml", "saml_entity_id": "https://x.test",
        "saml_sso_url": "https://x.test/sso", "saml_certificate": "not a certificate at all"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/saml_certificate"
    r = await o.post("/api/v1/identity/identity-providers", json={
        "slug": "owners", "name": "Owners", "protocol": "saml", "saml_metadata_xml": saml.peer.metadata(),
        "role_map": [{"claim": "groups", "value": "x", "role": "owner"}]})
    assert r.status_code == 422 and "/role_map/0/role" in [e["pointer"] for e in r.json()["errors"]]
    r = await o.post("/api/v1/identity/identity-providers", json={
        "slug": "okta", "name": "Again", "protocol": "saml", "saml_metadata_xml": saml.peer.metadata()})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/slug"
    r = await o.post("/api/v1/identity/identity-providers", json={
        "slug": "okta-two", "name": "Twice", "protocol": "saml", "saml_metadata_xml": saml.peer.metadata()})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/saml_entity_id"
    r = await o.patch(f"/api/v1/identity/identity-providers/{saml.idp['id']}", json={"name": "Okta (SAML)"})
    assert r.status_code == 200, r.text  # its own entity id is no conflict
    # a member may not configure connections; another org does not see this one
    member = await o.add_user(["member"])
    assert (await member.post("/api/v1/identity/identity-providers", json={
        "slug": "m", "name": "M", "protocol": "saml", "saml_metadata_xml": saml.peer.metadata()})).status_code == 403
    other = await new_org(o.client, o.nx)
    assert (await other.get(f"/api/v1/identity/identity-providers/{saml.idp['id']}")).status_code == 404


# -- sign-in --------------------------------------------------------------------------


async def test_sp_initiated_sign_in_provisions_maps_roles_and_opens_a_session(nx: Nexus, saml: Setup) -> None:
    email = f"ada-{secrets.token_hex(3)}@{saml.owner.org_slug}.test"
    async with browser(nx) as b:
        req_id, relay, args = await start(b, saml)
        assert args["destination"] == saml.acs and args["sp_entity_id"] == saml.sp_entity
        xml = saml.peer.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email=email, attributes={"groups": ["staff", "nexus-admins"]})
        r = await post(b, saml, xml, relay)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/apps/tasks"
        me = (await b.get("/api/v1/identity/me")).json()
        assert me["email"] == email and me["org"]["slug"] == saml.owner.org_slug
        assert set(me["roles"]) == {"admin", "member"}
    [user] = await users_named(saml, email)
    assert user["status"] == "active"
    rows = await audit_rows(nx, saml.owner.org_id, action="signed_in", record_id=str(user["id"]))
    assert rows[-1]["after"]["method"] == "saml:okta"
    assert await audit_rows(nx, saml.owner.org_id, action="federated_identity_linked", record_id=str(user["id"]))
    # next time without the admin group: the role map is applied again
    async with browser(nx) as b:
        req_id, relay, _ = await start(b, saml)
        xml = saml.peer.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email=email, attributes={"groups": ["staff"]})
        assert (await post(b, saml, xml, relay)).status_code == 303
        assert (await b.get("/api/v1/identity/me")).json()["roles"] == ["member"]
    assert len(await users_named(saml, email)) == 1


async def test_encrypted_assertion_is_decrypted_with_the_sp_key(nx: Nexus, saml: Setup) -> None:
    md = (await saml.owner.client.get(f"{saml.prefix}/metadata")).text
    cert = re.search(r'use="encryption">.*?<ns\d:X509Certificate>([^<]+)<', md, re.S)
    assert cert is not None
    pem = "-----BEGIN CERTIFICATE-----\n" + cert.group(1).strip() + "\n-----END CERTIFICATE-----\n"
    email = f"enc-{secrets.token_hex(3)}@x.test"
    async with browser(nx) as b:
        req_id, relay, _ = await start(b, saml)
        xml = saml.peer.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email=email, encrypt_with=pem)
        assert "EncryptedAssertion" in xml and email not in xml
        r = await post(b, saml, xml, relay)
        assert r.status_code == 303, r.text
        assert (await b.get("/api/v1/identity/me")).json()["email"] == email


async def test_idp_initiated_only_when_allowed_and_never_twice(nx: Nexus, saml: Setup) -> None:
    email = f"idpinit-{secrets.token_hex(3)}@x.test"
    xml = saml.peer.response_xml(in_response_to=None, destination=saml.acs, sp_entity_id=saml.sp_entity, email=email)
    async with browser(nx) as b:
        await refused(nx, saml, await post(b, saml, xml, "/apps/notes"), "invalid_response")
    r = await saml.owner.patch(f"/api/v1/identity/identity-providers/{saml.idp['id']}",
                               json={"allow_idp_initiated": True})
    assert r.status_code == 200, r.text
    xml = saml.peer.response_xml(in_response_to=None, destination=saml.acs, sp_entity_id=saml.sp_entity, email=email)
    async with browser(nx) as b:
        r = await post(b, saml, xml, "/apps/notes")
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/apps/notes"
        assert (await b.get("/api/v1/identity/me")).json()["email"] == email
    async with browser(nx) as b:  # the same assertion again: a replay
        await refused(nx, saml, await post(b, saml, xml), "replayed")
        assert (await b.get("/api/v1/identity/me")).status_code == 401
    async with browser(nx) as b:  # a RelayState naming another site is not followed
        xml = saml.peer.response_xml(in_response_to=None, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email=email)
        r = await post(b, saml, xml, "https://evil.test/steal")
        assert r.status_code == 303 and r.headers["location"] == "/"


async def test_existing_user_is_linked_not_duplicated_and_deactivated_is_refused(nx: Nexus, saml: Setup) -> None:
    colleague = await saml.owner.add_user(["viewer"])
    async with browser(nx) as b:
        req_id, relay, _ = await start(b, saml)
        xml = saml.peer.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email=colleague.email)
        assert (await post(b, saml, xml, relay)).status_code == 303
        assert (await b.get("/api/v1/identity/me")).json()["id"] == colleague.user_id
    r = await saml.owner.post(f"/api/v1/identity/users/{colleague.user_id}/deactivate")
    assert r.status_code == 200
    async with browser(nx) as b:
        req_id, relay, _ = await start(b, saml)
        xml = saml.peer.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email=colleague.email)
        await refused(nx, saml, await post(b, saml, xml, relay), "deactivated")


async def test_no_jit_means_no_new_accounts(nx: Nexus, saml: Setup) -> None:
    await saml.owner.patch(f"/api/v1/identity/identity-providers/{saml.idp['id']}", json={"jit_provisioning": False})
    email = f"nobody-{secrets.token_hex(3)}@x.test"
    async with browser(nx) as b:
        req_id, relay, _ = await start(b, saml)
        xml = saml.peer.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email=email)
        await refused(nx, saml, await post(b, saml, xml, relay), "no_account")
    assert await users_named(saml, email) == []


async def test_disabled_or_unknown_connection(nx: Nexus, saml: Setup) -> None:
    async with browser(nx) as b:
        assert (await b.get(f"{saml.prefix}/nope/login")).status_code == 404
        assert (await b.get("/api/v1/identity/federation/no-such-org/saml/okta/login")).status_code == 404
        req_id, relay, _ = await start(b, saml)
        await saml.owner.patch(f"/api/v1/identity/identity-providers/{saml.idp['id']}", json={"enabled": False})
        xml = saml.peer.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email="x@x.test")
        await refused(nx, saml, await post(b, saml, xml, relay), "unknown_issuer")
        assert (await b.get(f"{saml.prefix}/okta/login")).status_code == 404


async def test_deleted_account_is_refused_not_recreated(nx: Nexus, saml: Setup) -> None:
    email = f"gone-{secrets.token_hex(3)}@x.test"
    async with browser(nx) as b:
        req_id, relay, _ = await start(b, saml)
        xml = saml.peer.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email=email)
        assert (await post(b, saml, xml, relay)).status_code == 303
        user_id = (await b.get("/api/v1/identity/me")).json()["id"]
    assert (await saml.owner.delete(f"/api/v1/identity/users/{user_id}")).status_code == 204
    async with browser(nx) as b:
        req_id, relay, _ = await start(b, saml)
        xml = saml.peer.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email=email)
        await refused(nx, saml, await post(b, saml, xml, relay), "deleted")
    assert (await saml.owner.post(f"/api/v1/identity/users/{user_id}/restore")).status_code == 200
    async with browser(nx) as b:  # restored: the same account again, linked anew
        req_id, relay, _ = await start(b, saml)
        xml = saml.peer.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                     email=email)
        assert (await post(b, saml, xml, relay)).status_code == 303
        assert (await b.get("/api/v1/identity/me")).json()["id"] == user_id
