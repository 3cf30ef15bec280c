"""Hostile SAML responses at NEXUS's assertion consumer: each is refused with a problem+json,
opens no session, changes nothing, and is written to the audit trail."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from nexus.apps.identity.federation.saml import xmlsec_available
from nexus.kernel.http.app import Nexus
from tests.apps.identity.saml_peers import PeerIdP, PeerSP
from tests.apps.identity.test_saml_sp import (
    IDP_ENTITY,
    Setup,
    browser,
    post,
    refused,
    saml,
    start,
    users_named,
)

pytestmark = pytest.mark.skipif(not xmlsec_available(),
                                reason="xmlsec1 is not installed (make test installs it: scripts/xmlsec1.sh)")
__all__ = ["saml"]  # the fixture, shared with test_saml_sp

ASSERTION = re.compile(r"<ns1:Assertion .*?</ns1:Assertion>", re.S)
SIGNATURE = re.compile(r"<ns2:Signature .*?</ns2:Signature>", re.S)


def forged_from(signed_assertion: str, victim: str, new_id: str | None = None) -> str:
    """The signed assertion with its signature removed and the subject and email swapped."""
    forged = SIGNATURE.sub("", signed_assertion, count=1)
    forged = re.sub(r"(<ns1:NameID [^>]*>)[^<]+(</ns1:NameID>)", rf"\g<1>{victim}\g<2>", forged)
    forged = re.sub(r'(<ns1:Attribute Name="email".*?xsi:type="xs:string">)[^<]+', rf"\g<1>{victim}", forged,
                    flags=re.S)
    if new_id:
        forged = re.sub(r'ID="[^"]+"', f'ID="{new_id}"', forged, count=1)
    return forged


async def no_session(b: httpx.AsyncClient) -> None:
    assert (await b.get("/api/v1/identity/me")).status_code == 401


async def valid_response(b: httpx.AsyncClient, s: Setup, email: str, **kw: object) -> tuple[str, str]:
    req_id, relay, _ = await start(b, s)
    xml = s.peer.response_xml(in_response_to=req_id, destination=s.acs, sp_entity_id=s.sp_entity, email=email,
                              **kw)  # type: ignore[arg-type]
    return xml, relay


async def test_unsigned_assertion_is_refused(nx: Nexus, saml: Setup) -> None:
    email = f"u-{secrets.token_hex(3)}@x.test"
    async with browser(nx) as b:
        xml, relay = await valid_response(b, saml, email, sign_assertion=False, sign_response=False)
        assert "Signature" not in xml
        await refused(nx, saml, await post(b, saml, xml, relay), "invalid_response")
        await no_session(b)
        # a signed envelope around an unsigned assertion is not enough either
        xml, relay = await valid_response(b, saml, email, sign_assertion=False, sign_response=True)
        await refused(nx, saml, await post(b, saml, xml, relay), "invalid_response")
        await no_session(b)
    assert await users_named(saml, email) == []


async def test_modified_signed_content_is_refused(nx: Nexus, saml: Setup) -> None:
    email = f"m-{secrets.token_hex(3)}@x.test"
    async with browser(nx) as b:
        xml, relay = await valid_response(b, saml, email, attributes={"groups": ["staff"]})
        tampered = xml.replace(">staff<", ">nexus-admins<")
        assert tampered != xml
        await refused(nx, saml, await post(b, saml, tampered, relay), "invalid_response")
        await no_session(b)
    assert await users_named(saml, email) == []


async def test_signature_by_another_key_is_refused(nx: Nexus, saml: Setup) -> None:
    impostor = PeerIdP(IDP_ENTITY, [(await saml.owner.client.get(f"{saml.prefix}/metadata")).text])
    try:
        async with browser(nx) as b:
            req_id, relay, _ = await start(b, saml)
            xml = impostor.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                        email=saml.owner.email)
            await refused(nx, saml, await post(b, saml, xml, relay), "invalid_response")
            await no_session(b)
    finally:
        impostor.close()


@pytest.mark.parametrize("variant", ["second_assertion_first", "second_assertion_after", "same_id_wrapper",
                                     "signed_moved_to_extensions"])
async def test_signature_wrapping_is_refused(nx: Nexus, saml: Setup, variant: str) -> None:
    """XSW: the verifier checks one element, the application reads another."""
    victim = saml.owner.email
    attacker = f"attacker-{secrets.token_hex(3)}@x.test"
    async with browser(nx) as b:
        xml, relay = await valid_response(b, saml, attacker)
        signed = ASSERTION.search(xml)
        assert signed is not None
        original = signed.group(0)
        signed_id = re.search(r'ID="([^"]+)"', original).group(1)  # type: ignore[union-attr]
        if variant == "second_assertion_first":
            evil = xml.replace(original, forged_from(original, victim, "id-evil") + original)
        elif variant == "second_assertion_after":
            evil = xml.replace(original, original + forged_from(original, victim, "id-evil"))
        elif variant == "same_id_wrapper":
            # the forged assertion carries the signed one's ID; the signed one hides inside it
            forged = forged_from(original, victim)
            forged = forged.replace("</ns1:Assertion>", f"<ns1:Advice>{original}</ns1:Advice></ns1:Assertion>")
            evil = xml.replace(original, forged)
        else:
            forged = forged_from(original, victim, signed_id)
            evil = xml.replace(original, forged)
            evil = evil.replace("<ns0:Status>", f"<ns0:Extensions>{original}</ns0:Extensions><ns0:Status>", 1)
        assert evil != xml
        r = await post(b, saml, evil, relay)
        await refused(nx, saml, r, "invalid_response")
        await no_session(b)
    assert await users_named(saml, attacker) == []


async def test_replayed_assertion_is_refused(nx: Nexus, saml: Setup) -> None:
    email = f"r-{secrets.token_hex(3)}@x.test"
    async with browser(nx) as b:
        xml, relay = await valid_response(b, saml, email)
        assert (await post(b, saml, xml, relay)).status_code == 303
    async with browser(nx) as b:
        # SP-initiated: the request it answered is used up
        await refused(nx, saml, await post(b, saml, xml, relay), "unknown_request")
        await no_session(b)
    await saml.owner.patch(f"/api/v1/identity/identity-providers/{saml.idp['id']}", json={"allow_idp_initiated": True})
    unsolicited = saml.peer.response_xml(in_response_to=None, destination=saml.acs, sp_entity_id=saml.sp_entity,
                                         email=email)
    async with browser(nx) as b:
        assert (await post(b, saml, unsolicited)).status_code == 303
    async with browser(nx) as b:
        # IdP-initiated: no request to use up, so the assertion id cache catches it
        await refused(nx, saml, await post(b, saml, unsolicited), "replayed")
        await no_session(b)


async def test_wrong_audience_is_refused(nx: Nexus, saml: Setup) -> None:
    other_sp = PeerSP("https://other-sp.test/metadata", None)
    nexus_md = (await saml.owner.client.get(f"{saml.prefix}/metadata")).text
    idp = PeerIdP(IDP_ENTITY, [nexus_md, other_sp.metadata()])
    idp.keys.close()
    idp.keys = saml.peer.keys  # the trusted IdP's own key: only the audience is wrong
    idp.server = idp._server(5)
    try:
        async with browser(nx) as b:
            req_id, relay, _ = await start(b, saml)
            xml = idp.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=other_sp.entity_id,
                                   email=saml.owner.email)
            assert "<ns1:Audience>https://other-sp.test/metadata</ns1:Audience>" in xml
            await refused(nx, saml, await post(b, saml, xml, relay), "invalid_response")
            await no_session(b)
    finally:
        other_sp.close()


async def test_wrong_destination_and_recipient_are_refused(nx: Nexus, saml: Setup) -> None:
    async with browser(nx) as b:
        req_id, relay, _ = await start(b, saml)
        xml = saml.peer.response_xml(in_response_to=req_id, destination="https://evil.test/acs",
                                     sp_entity_id=saml.sp_entity, email=saml.owner.email)
        assert 'Recipient="https://evil.test/acs"' in xml
        await refused(nx, saml, await post(b, saml, xml, relay), "invalid_response")
        await no_session(b)


async def test_response_addressed_elsewhere_is_refused(nx: Nexus, saml: Setup) -> None:
    """Only the (unsigned) envelope's Destination is wrong; the signed assertion is intact."""
    async with browser(nx) as b:
        xml, relay = await valid_response(b, saml, saml.owner.email)
        moved = xml.replace(f'Destination="{saml.acs}"', 'Destination="https://evil.test/acs"', 1)
        assert moved != xml and f'Recipient="{saml.acs}"' in moved
        await refused(nx, saml, await post(b, saml, moved, relay), "invalid_response")
        await no_session(b)


async def test_expired_assertion_is_refused(nx: Nexus, saml: Setup) -> None:
    old = saml.peer.expired()
    async with browser(nx) as b:
        req_id, relay, _ = await start(b, saml)
        xml = old.response_xml(in_response_to=req_id, destination=saml.acs, sp_entity_id=saml.sp_entity,
                               email=saml.owner.email)
        await refused(nx, saml, await post(b, saml, xml, relay), "invalid_response")
        await no_session(b)


async def test_response_to_an_unknown_request_is_refused(nx: Nexus, saml: Setup) -> None:
    async with browser(nx) as b:
        xml = saml.peer.response_xml(in_response_to="id-never-asked-for", destination=saml.acs,
                                     sp_entity_id=saml.sp_entity, email=saml.owner.email)
        await refused(nx, saml, await post(b, saml, xml), "unknown_request")
        await no_session(b)


async def test_malformed_input_is_a_clear_4xx(nx: Nexus, saml: Setup) -> None:
    async with browser(nx) as b:
        acs = f"{saml.prefix}/acs"
        r = await b.post(acs, data={"RelayState": "x"})
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
        await refused(nx, saml, await b.post(acs, data={"SAMLResponse": "%%%not base64"}), "malformed")
        await refused(nx, saml, await b.post(acs, data={"SAMLResponse": "PGZvbz48L2Zvbz4="}), "malformed")  # <foo></foo>
        bomb = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>'
        import base64

        await refused(nx, saml, await b.post(acs, data={"SAMLResponse": base64.b64encode(bomb.encode()).decode()}),
                      "malformed")
        r = await b.post(acs, json={"SAMLResponse": "x"})
        assert r.status_code == 415
        r = await b.post(acs, content=b"SAMLResponse=" + b"A" * (600 * 1024),
                         headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
        await no_session(b)
