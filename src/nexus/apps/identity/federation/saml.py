"""SAML 2.0 through pysaml2 (signatures and encryption by xmlsec1).

NEXUS is one service provider per org (entity id = its metadata URL) with any number of
IdP connections, and one identity provider per org for the service providers it registers.
pysaml2 is synchronous and runs xmlsec1 as a subprocess: callers run these in a thread.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.attribute_converter import AttributeConverter
from saml2.client import Saml2Client
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_UNSPECIFIED, NameID
from saml2.server import Server
from saml2.sigver import SIG_RSA_SHA256

from .keys import KeyPair, cert_body, key_files, normalise_certificate

log = logging.getLogger("nexus.identity.federation")

XMLSEC = "/usr/bin/xmlsec1"
MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
SAMLP = "{urn:oasis:names:tc:SAML:2.0:protocol}"
SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"
CLOCK_SKEW = 60  # seconds of clock difference tolerated in NotBefore / NotOnOrAfter
RELEASED = ("email", "name", "roles")  # attributes NEXUS as IdP releases (basic name format)


def xmlsec_available() -> bool:
    import os

    return os.access(XMLSEC, os.X_OK)


@dataclass(frozen=True)
class Endpoints:
    """Where an org's SAML endpoints live under the public base URL."""

    base: str
    org: str

    @property
    def prefix(self) -> str:
        return f"{self.base}/api/v1/identity/federation/{self.org}/saml"

    @property
    def sp_entity_id(self) -> str:
        return f"{self.prefix}/metadata"

    @property
    def acs(self) -> str:
        return f"{self.prefix}/acs"

    @property
    def idp_entity_id(self) -> str:
        return f"{self.prefix}/idp/metadata"

    @property
    def sso(self) -> str:
        return f"{self.prefix}/idp/sso"


# -- metadata parsing (admin input) ----------------------------------------------------


def _parse_xml(xml: str, what: str) -> Element:
    try:
        # defusedxml: no entity expansion, no external entities, no DTD tricks.
        root: Element = SafeET.fromstring(xml.encode())
    except Exception:
        raise ValueError(f"{what} is not well-formed XML") from None
    if root.tag == f"{MD}EntitiesDescriptor":
        found = root.find(f"{MD}EntityDescriptor")
        if found is None:
            raise ValueError(f"{what} holds no EntityDescriptor")
        root = found
    if root.tag != f"{MD}EntityDescriptor" or not root.get("entityID"):
        raise ValueError(f"{what} is not SAML metadata (an EntityDescriptor with an entityID)")
    return root


def _signing_cert(desc: Element) -> str | None:
    for kd in desc.findall(f"{MD}KeyDescriptor"):
        if kd.get("use") in (None, "signing"):
            c = kd.find(f".//{DS}X509Certificate")
            if c is not None and c.text:
                return normalise_certificate(c.text)
    return None


def parse_idp_metadata(xml: str) -> dict[str, str]:
    """entity id, SSO URL (redirect binding preferred) and signing certificate of an IdP."""
    root = _parse_xml(xml, "The IdP metadata")
    desc = root.find(f"{MD}IDPSSODescriptor")
    if desc is None:
        raise ValueError("The metadata describes no identity provider (IDPSSODescriptor)")
    sso = None
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        for s in desc.findall(f"{MD}SingleSignOnService"):
            if s.get("Binding") == binding and s.get("Location"):
                sso = s.get("Location")
                break
        if sso:
            break
    cert = _signing_cert(desc)
    if not sso or not cert:
        raise ValueError("The IdP metadata needs a SingleSignOnService (redirect or POST) and a signing certificate")
    return {"entity_id": str(root.get("entityID")), "sso_url": sso, "certificate": cert}


def parse_sp_metadata(xml: str) -> dict[str, str]:
    root = _parse_xml(xml, "The SP metadata")
    desc = root.find(f"{MD}SPSSODescriptor")
    if desc is None:
        raise ValueError("The metadata describes no service provider (SPSSODescriptor)")
    acs = None
    for s in desc.findall(f"{MD}AssertionConsumerService"):
        if s.get("Binding") == BINDING_HTTP_POST and s.get("Location"):
            acs = s.get("Location")
            break
    if not acs:
        raise ValueError("The SP metadata needs an AssertionConsumerService with the HTTP-POST binding")
    # The browser posts assertions there from a NEXUS page: only a web address may be one.
    parts = urlsplit(acs)
    if parts.scheme not in ("https", "http") or not parts.netloc or any(c in acs for c in "\"'<> "):
        raise ValueError("The SP's AssertionConsumerService Location must be an http(s) URL")
    return {"entity_id": str(root.get("entityID")), "acs_url": acs}


def idp_metadata_from_fields(entity_id: str, sso_url: str, certificate_pem: str) -> str:
    """Minimal IdP metadata for pysaml2 from the connection's fields: the only IdP and the
    only certificate trusted for this connection's responses."""
    from xml.sax.saxutils import quoteattr

    return (
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(entity_id)}>'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" '
        'WantAuthnRequestsSigned="false">'
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f"{cert_body(certificate_pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        f'<md:SingleSignOnService Binding="{BINDING_HTTP_REDIRECT}" Location={quoteattr(sso_url)}/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


# -- NEXUS as service provider ----------------------------------------------------------


def _sp_config(ep: Endpoints, key: str, cert: str, idp: dict[str, Any] | None, allow_unsolicited: bool) -> SPConfig:
    conf = SPConfig()
    conf.load({
        "entityid": ep.sp_entity_id,
        "xmlsec_binary": XMLSEC,
        "key_file": key, "cert_file": cert,
        "encryption_keypairs": [{"key_file": key, "cert_file": cert}],
        "metadata": {"inline": [idp_metadata_from_fields(idp["saml_entity_id"], idp["saml_sso_url"],
                                                         idp["saml_certificate"])]} if idp else {},
        "accepted_time_diff": CLOCK_SKEW,
        "allow_unknown_attributes": True,  # IdPs name groups/roles attributes as they like
        "service": {"sp": {
            "name": "NEXUS",
            "endpoints": {"assertion_consumer_service": [(ep.acs, BINDING_HTTP_POST)]},
            "allow_unsolicited": allow_unsolicited,
            "authn_requests_signed": True,
            "want_assertions_signed": True,  # the assertion itself, not only the envelope
            "want_response_signed": False,
            "name_id_format": NAMEID_FORMAT_UNSPECIFIED,
            "name_id_format_allow_create": True,
            "signing_algorithm": SIG_RSA_SHA256,
        }},
    })
    return conf


def sp_metadata(ep: Endpoints, pair: KeyPair) -> str:
    with key_files(pair) as (key, cert):
        return str(create_metadata_string(None, _sp_config(ep, key, cert, None, False), valid=None,
                                          sign=False).decode())


def authn_request(ep: Endpoints, pair: KeyPair, idp: dict[str, Any], relay_state: str) -> tuple[str, str]:
    """(request id, redirect URL): a signed AuthnRequest for the IdP's redirect binding."""
    with key_files(pair) as (key, cert):
        client = Saml2Client(config=_sp_config(ep, key, cert, idp, False))
        req_id, info = client.prepare_for_authenticate(
            entityid=idp["saml_entity_id"], relay_state=relay_state, binding=BINDING_HTTP_REDIRECT,
            sigalg=SIG_RSA_SHA256)
    location = dict(info["headers"])["Location"]
    return str(req_id), str(location)


@dataclass(frozen=True)
class Envelope:
    """What a SAML response says about itself before any signature is checked: used only to
    pick the connection and the pending request, never to trust a statement."""

    issuer: str | None
    in_response_to: str | None


def peek_response(saml_response: str) -> Envelope:
    try:
        xml = base64.b64decode(saml_response, validate=False)
        root = SafeET.fromstring(xml)
    except (binascii.Error, ValueError, SyntaxError, Exception):
        raise ValueError("SAMLResponse is not base64-encoded XML") from None
    if root.tag != f"{SAMLP}Response":
        raise ValueError("SAMLResponse is not a SAML 2.0 Response")
    issuer = root.find(f"{SAML}Issuer")
    if issuer is None:
        issuer = root.find(f"{SAML}Assertion/{SAML}Issuer")
    return Envelope(issuer.text.strip() if issuer is not None and issuer.text else None, root.get("InResponseTo"))


@dataclass(frozen=True)
class Assertion:
    assertion_id: str
    issuer: str
    in_response_to: str | None
    name_id: str
    name_id_format: str | None
    attributes: dict[str, list[str]]
    not_on_or_after: str | None


def parse_response(ep: Endpoints, pair: KeyPair, idp: dict[str, Any], saml_response: str,
                   outstanding: dict[str, str]) -> Assertion:
    """Verify a response from this IdP (signature on the assertion, audience, recipient,
    destination, time window, InResponseTo) and decrypt it when encrypted. Raises ValueError."""
    allow_unsolicited = not outstanding and bool(idp.get("allow_idp_initiated"))
    with key_files(pair) as (key, cert):
        client = Saml2Client(config=_sp_config(ep, key, cert, idp, allow_unsolicited))
        try:
            resp = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST, outstanding)
        except Exception as exc:  # pysaml2 raises many unrelated types; each one is a refusal
            raise ValueError(f"{type(exc).__name__}: {str(exc)[:300]}") from None
    if resp is None or resp.assertion is None:
        raise ValueError("the response holds no valid assertion for this service (destination, status)")
    a = resp.assertion
    if resp.in_response_to and resp.in_response_to not in outstanding:
        raise ValueError("the response answers a request this service did not make")
    if not resp.in_response_to and not allow_unsolicited:
        raise ValueError("unsolicited responses (IdP-initiated) are not allowed for this connection")
    issuer = resp.issuer()
    if issuer != idp["saml_entity_id"]:
        raise ValueError("the response comes from another identity provider")
    name_id = resp.name_id
    if name_id is None or not name_id.text:
        raise ValueError("the assertion names no subject")
    cond = a.conditions
    attrs = {str(k): [str(v) for v in vs] for k, vs in (resp.ava or {}).items()}
    return Assertion(str(a.id), issuer, resp.in_response_to, name_id.text.strip(), name_id.format, attrs,
                     cond.not_on_or_after if cond is not None else None)


# -- NEXUS as identity provider ----------------------------------------------------------


def _converters() -> list[AttributeConverter]:
    ac = AttributeConverter(NAME_FORMAT_BASIC)
    ac.from_dict({"identifier": NAME_FORMAT_BASIC, "fro": {n: n for n in RELEASED}, "to": {n: n for n in RELEASED}})
    return [ac]


def _idp_config(ep: Endpoints, key: str, cert: str, sp_metadata_xml: list[str]) -> IdPConfig:
    conf = IdPConfig()
    conf.load({
        "entityid": ep.idp_entity_id,
        "xmlsec_binary": XMLSEC,
        "key_file": key, "cert_file": cert,
        "metadata": {"inline": sp_metadata_xml} if sp_metadata_xml else {},
        "accepted_time_diff": CLOCK_SKEW,
        "service": {"idp": {
            "name": "NEXUS",
            "endpoints": {"single_sign_on_service": [(ep.sso, BINDING_HTTP_REDIRECT), (ep.sso, BINDING_HTTP_POST)]},
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            "signing_algorithm": SIG_RSA_SHA256,
            "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                   "name_form": NAME_FORMAT_BASIC}},
        }},
    })
    conf.attribute_converters = _converters()
    return conf


def idp_metadata(ep: Endpoints, pair: KeyPair) -> str:
    with key_files(pair) as (key, cert):
        return str(create_metadata_string(None, _idp_config(ep, key, cert, []), valid=None, sign=False).decode())


@dataclass(frozen=True)
class AuthnRequestInfo:
    request_id: str
    sp_entity_id: str
    acs_url: str


def read_authn_request(ep: Endpoints, pair: KeyPair, sp_metadata_xml: list[str], saml_request: str,
                       binding: str) -> AuthnRequestInfo:
    """An AuthnRequest from a registered SP; the ACS URL comes from the SP's metadata, never
    from the request alone (else anyone could have assertions posted to their own site)."""
    with key_files(pair) as (key, cert):
        server = Server(config=_idp_config(ep, key, cert, sp_metadata_xml))
        try:
            req = server.parse_authn_request(saml_request, binding)
            args = server.response_args(req.message, [BINDING_HTTP_POST])
        except Exception as exc:
            raise ValueError(f"{type(exc).__name__}: {str(exc)[:300]}") from None
    return AuthnRequestInfo(str(req.message.id), str(args["sp_entity_id"]), str(args["destination"]))


def authn_response(ep: Endpoints, pair: KeyPair, sp_metadata_xml: list[str], req: AuthnRequestInfo,
                   user: dict[str, Any]) -> str:
    """A signed response with a signed assertion for the SP, base64-encoded (HTTP-POST binding)."""
    with key_files(pair) as (key, cert):
        server = Server(config=_idp_config(ep, key, cert, sp_metadata_xml))
        identity = {"email": [user["email"]], "name": [user["name"]], "roles": list(user["roles"])}
        resp = server.create_authn_response(
            identity, in_response_to=req.request_id, destination=req.acs_url, sp_entity_id=req.sp_entity_id,
            userid=user["id"], name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=user["email"]),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_response=True, sign_assertion=True)
    return base64.b64encode(str(resp).encode()).decode()


def post_form_page(action: str, fields: dict[str, str], nonce: str) -> str:
    """The page that carries a SAML message to the other side (HTTP-POST binding): every value
    escaped, submitted by a script the page's CSP admits by nonce, or by hand without script."""
    from html import escape

    inputs = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}"/>' for k, v in fields.items())
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Signing you in…</title></head><body>'
        f'<form action="{escape(action)}" method="post">{inputs}'
        "<noscript><p>Continue to finish signing in.</p><button type=\"submit\">Continue</button></noscript></form>"
        f'<script nonce="{escape(nonce)}">document.forms[0].submit()</script></body></html>'
    )
