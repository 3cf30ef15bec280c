"""The other side of SAML in tests: pysaml2's own Server (as an IdP) and Saml2Client (as an
SP), each with its own key pair and configured only from NEXUS's published metadata."""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.attribute_converter import AttributeConverter
from saml2.client import Saml2Client
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.sigver import SIG_RSA_SHA256

from nexus.apps.identity.federation.keys import KeyPair, generate_keypair

XMLSEC = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"
PASSWORD_CLASS = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


class _Keys:
    def __init__(self, name: str) -> None:
        self.pair: KeyPair = generate_keypair(name)
        self.dir = Path(tempfile.mkdtemp(prefix="saml-peer-"))
        self.key = str(self.dir / "key.pem")
        self.cert = str(self.dir / "cert.pem")
        Path(self.key).write_text(self.pair.private_key_pem)
        Path(self.cert).write_text(self.pair.certificate_pem)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class PeerIdP:
    """An independent SAML IdP (pysaml2 Server) that trusts the given SP metadata."""

    def __init__(self, entity_id: str, sp_metadata: list[str], lifetime_minutes: int = 5) -> None:
        self.entity_id = entity_id
        self.sso_url = entity_id.rsplit("/", 1)[0] + "/sso"
        self.keys = _Keys("peer-idp")
        self._sp_metadata = sp_metadata
        self.server = self._server(lifetime_minutes)

    def _server(self, lifetime_minutes: int) -> Server:
        conf = IdPConfig()
        conf.load({
            "entityid": self.entity_id, "xmlsec_binary": XMLSEC,
            "key_file": self.keys.key, "cert_file": self.keys.cert,
            "metadata": {"inline": self._sp_metadata},
            "service": {"idp": {
                "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT],
                "policy": {"default": {"lifetime": {"minutes": lifetime_minutes}, "attribute_restrictions": None,
                                       "name_form": NAME_FORMAT_BASIC}},
            }},
        })
        # Release the attributes the tests send, by their plain (basic) names, as Okta does.
        names = ("email", "displayName", "groups", "department")
        ac = AttributeConverter(NAME_FORMAT_BASIC)
        ac.from_dict({"identifier": NAME_FORMAT_BASIC, "fro": {n: n for n in names}, "to": {n: n for n in names}})
        conf.attribute_converters = [ac]
        return Server(config=conf)

    def expired(self) -> PeerIdP:
        """The same IdP (same keys), issuing assertions whose NotOnOrAfter is 10 minutes past."""
        other = object.__new__(PeerIdP)
        other.entity_id, other.sso_url, other.keys, other._sp_metadata = (
            self.entity_id, self.sso_url, self.keys, self._sp_metadata)
        other.server = other._server(-10)
        return other

    def metadata(self) -> str:
        return str(create_metadata_string(None, self.server.config, valid=None, sign=False).decode())

    def read_request(self, redirect_url: str) -> tuple[str, str, dict[str, Any]]:
        """(request id, relay state, response args) from an AuthnRequest sent by redirect."""
        assert redirect_url.startswith(self.sso_url + "?"), redirect_url
        q = parse_qs(urlsplit(redirect_url).query)
        assert "Signature" in q and "SigAlg" in q, "NEXUS signs its AuthnRequests"
        req = self.server.parse_authn_request(q["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        args = self.server.response_args(req.message, [BINDING_HTTP_POST])
        return str(req.message.id), q.get("RelayState", [""])[0], args

    def response_xml(self, *, in_response_to: str | None, destination: str, sp_entity_id: str, email: str,
                     attributes: dict[str, list[str]] | None = None, sign_assertion: bool = True,
                     sign_response: bool = False, encrypt_with: str | None = None,
                     name_id: str | None = None) -> str:
        identity = {"email": [email], "displayName": [email.split("@")[0].title()], **(attributes or {})}
        resp = self.server.create_authn_response(
            identity, in_response_to=in_response_to, destination=destination, sp_entity_id=sp_entity_id,
            userid=email, name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id or "sub-" + hashlib.sha256(email.encode()).hexdigest()[:16]),
            authn={"class_ref": PASSWORD_CLASS}, sign_response=sign_response, sign_assertion=sign_assertion,
            encrypt_assertion=encrypt_with is not None, encrypt_cert_assertion=encrypt_with,
            sign_alg=SIG_RSA_SHA256)
        return str(resp)

    def close(self) -> None:
        self.keys.close()


def b64(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


class PeerSP:
    """An independent SAML SP (pysaml2 Saml2Client) that trusts the given IdP metadata."""

    def __init__(self, entity_id: str, idp_metadata: str | None) -> None:
        self.entity_id = entity_id
        self.acs = entity_id.rsplit("/", 1)[0] + "/acs"
        self.keys = _Keys("peer-sp")
        conf = SPConfig()
        conf.load({
            "entityid": entity_id, "xmlsec_binary": XMLSEC,
            "key_file": self.keys.key, "cert_file": self.keys.cert, "allow_unknown_attributes": True,
            "metadata": {"inline": [idp_metadata]} if idp_metadata else {},
            "service": {"sp": {
                "endpoints": {"assertion_consumer_service": [(self.acs, BINDING_HTTP_POST)]},
                "want_assertions_signed": True, "want_response_signed": True,
                "authn_requests_signed": False,
            }},
        })
        self.client = Saml2Client(config=conf)

    def metadata(self) -> str:
        return str(create_metadata_string(None, self.client.config, valid=None, sign=False).decode())

    def login_url(self, idp_entity_id: str, relay_state: str = "peer-state") -> tuple[str, str]:
        req_id, info = self.client.prepare_for_authenticate(entityid=idp_entity_id, relay_state=relay_state,
                                                            binding=BINDING_HTTP_REDIRECT)
        return str(req_id), str(dict(info["headers"])["Location"])

    def close(self) -> None:
        self.keys.close()


class LoopbackServer:
    """An ASGI app served on a free loopback port in a thread (uvicorn), for browser tests
    whose other side must be reachable over HTTP."""

    def __init__(self) -> None:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server: Any = None
        self._thread: Any = None

    def start(self, app: Any) -> None:
        import threading
        import time

        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._sock.close()


def auto_post_page(action: str, fields: dict[str, str]) -> str:
    from html import escape

    inputs = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}"/>' for k, v in fields.items())
    return (f'<!DOCTYPE html><html><body onload="document.forms[0].submit()">'
            f'<form method="post" action="{escape(action)}">{inputs}</form></body></html>')
