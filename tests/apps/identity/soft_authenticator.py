"""A software WebAuthn authenticator plus client for the passkey tests.

It plays the browser and the security key: reads the server's JSON options with python-fido2's
option classes, builds authenticator data, packed self-attestation and client data with
python-fido2's WebAuthn structures, signs with a real P-256 key (cryptography), and returns the
JSON a browser's `PublicKeyCredential.toJSON()` gives. Nothing here shares code with the
server's py_webauthn verification. Knobs let a test play a hostile or broken client: another
origin, another RP ID, no user verification, a rewound signature counter (a cloned key).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.utils import sha256
from fido2.webauthn import (
    Aaguid,
    AttestationObject,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorAssertionResponse,
    AuthenticatorAttestationResponse,
    AuthenticatorData,
    CollectedClientData,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialRequestOptions,
    RegistrationResponse,
)

FLAG = AuthenticatorData.FLAG
AAGUID = Aaguid(bytes.fromhex("6e65787573746573746b657900000001"))


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    counter: int = 0


class SoftAuthenticator:
    def __init__(self) -> None:
        self.credentials: dict[bytes, Credential] = {}

    def create(self, options: dict[str, Any], origin: str, *, user_verified: bool = True,
               rp_id: str | None = None) -> dict[str, Any]:
        """navigator.credentials.create(): a new discoverable credential, packed self-attestation."""
        opts = PublicKeyCredentialCreationOptions.from_dict(options)
        if not any(p.alg == ES256.ALGORITHM for p in opts.pub_key_cred_params):
            raise ValueError("ES256 not offered")
        rp = rp_id or opts.rp.id
        assert rp
        for excluded in opts.exclude_credentials or []:
            if excluded.id in self.credentials:
                raise ValueError("InvalidStateError: already registered")
        key = ec.generate_private_key(ec.SECP256R1())
        cred = Credential(os.urandom(32), key, rp, opts.user.id)
        self.credentials[cred.id] = cred
        attested = AttestedCredentialData.create(AAGUID, cred.id, ES256.from_cryptography_key(key.public_key()))
        flags = FLAG.UP | FLAG.AT | (FLAG.UV if user_verified else 0)
        auth_data = AuthenticatorData.create(sha256(rp.encode()), flags, cred.counter, attested)
        client_data = CollectedClientData.create(CollectedClientData.TYPE.CREATE, opts.challenge, origin)
        sig = key.sign(auth_data + client_data.hash, ec.ECDSA(hashes.SHA256()))
        att = AttestationObject.create("packed", auth_data, {"alg": ES256.ALGORITHM, "sig": sig})
        response = RegistrationResponse(
            raw_id=cred.id, response=AuthenticatorAttestationResponse(client_data=client_data, attestation_object=att))
        out = dict(response)
        out["response"] = {**out["response"], "transports": ["internal"]}
        return out

    def get(self, options: dict[str, Any], origin: str, *, user_verified: bool = True, rp_id: str | None = None,
            credential_id: bytes | None = None, counter: int | None = None) -> dict[str, Any]:
        """navigator.credentials.get(): an assertion from a matching credential (the first one
        allowed, or for an empty allow list any discoverable one for the RP)."""
        opts = PublicKeyCredentialRequestOptions.from_dict(options)
        rp = rp_id or opts.rp_id
        assert rp
        if credential_id is not None:
            cred = self.credentials[credential_id]
        else:
            allowed = [d.id for d in opts.allow_credentials or []]
            candidates = [c for c in self.credentials.values()
                          if (c.id in allowed if allowed else True) and c.rp_id == (opts.rp_id or rp)]
            if not candidates:
                raise ValueError("NotAllowedError: no credential")
            cred = candidates[0]
        if counter is None:
            cred.counter += 1
            counter = cred.counter
        flags = FLAG.UP | (FLAG.UV if user_verified else 0)
        auth_data = AuthenticatorData.create(sha256(rp.encode()), flags, counter)
        client_data = CollectedClientData.create(CollectedClientData.TYPE.GET, opts.challenge, origin)
        sig = cred.key.sign(auth_data + client_data.hash, ec.ECDSA(hashes.SHA256()))
        response = AuthenticationResponse(
            raw_id=cred.id, response=AuthenticatorAssertionResponse(
                client_data=client_data, authenticator_data=auth_data, signature=sig, user_handle=cred.user_handle))
        return dict(response)
