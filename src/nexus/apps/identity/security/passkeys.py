"""WebAuthn passkeys (W3C Web Authentication Level 3) through py_webauthn.

The relying party is the web app's origin: NEXUS_PUBLIC_URL when set, else the origin the
request came to (scheme and Host), and its RP ID is that origin's host. An assertion made for
another origin or RP ID, a credential of another user, or a signature counter that went
backwards (a cloned authenticator) is refused and audited. Passkeys are registered as
discoverable credentials with user verification preferred, so they also sign people in
without a user name; a passkey that verified its user counts as multi-factor (amr hwk+user).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from nexus.kernel.errors import Problem
from nexus.kernel.ids import new_id
from nexus.kernel.jsonutil import dumps, loads
from nexus.kernel.records import UnitOfWork

log = logging.getLogger("nexus.identity.passkeys")
RP_NAME = "NEXUS"
TIMEOUT_MS = 120_000
MAX_CREDENTIAL_JSON = 16_384


def relying_party(req: Request) -> tuple[str, str]:
    """(origin, rp id) this server expects in every ceremony."""
    from nexus.kernel.http.app import nexus_of

    public = nexus_of(req).settings.public_url
    if public:
        parts = urlsplit(public)
    else:
        parts = urlsplit(f"{req.url.scheme}://{req.headers.get('host', req.url.netloc)}")
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin, parts.hostname or "localhost"


def _descriptors(rows: list[Any]) -> list[PublicKeyCredentialDescriptor]:
    out = []
    for cred_id, transports in rows:
        names = transports if isinstance(transports, list) else loads(transports or "[]")
        known = [AuthenticatorTransport(t) for t in names if t in AuthenticatorTransport._value2member_map_]
        out.append(PublicKeyCredentialDescriptor(id=base64url_to_bytes(cred_id), transports=known or None))
    return out


def _as_json(credential: Any) -> str:
    if isinstance(credential, str):
        text = credential
    elif isinstance(credential, dict):
        text = dumps(credential).decode()
    else:
        raise Problem(400, "credential must be the PublicKeyCredential as JSON.", extra={"error": "invalid_request"})
    if len(text) > MAX_CREDENTIAL_JSON:
        raise Problem(400, "credential is too large.", extra={"error": "invalid_request"})
    return text


# -- registration ------------------------------------------------------------------------


async def registration_options(uow: UnitOfWork, rp: tuple[str, str], user_id: str, email: str,
                               name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options for navigator.credentials.create, state to keep in the challenge)."""
    rows = await uow.conn.fetch(
        "SELECT credential_id, transports FROM identity_mfa_factor WHERE org_id = ? AND user_id = ?"
        " AND kind = 'webauthn'", [uow.ctx.org_id, user_id])
    opts = generate_registration_options(
        rp_id=rp[1], rp_name=RP_NAME, user_name=email, user_id=user_id.encode(), user_display_name=name or email,
        timeout=TIMEOUT_MS, exclude_credentials=_descriptors(list(rows)),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.PREFERRED))
    state = {"challenge": bytes_to_base64url(opts.challenge), "origin": rp[0], "rp_id": rp[1]}
    return loads(options_to_json(opts)), state


async def register(uow: UnitOfWork, state: dict[str, Any], credential: Any, rp: tuple[str, str], user_id: str,
                   name: str) -> dict[str, Any]:
    text = _as_json(credential)
    if rp != (state["origin"], state["rp_id"]):
        raise Problem(400, "The passkey was created for another site.")
    try:
        verified = verify_registration_response(
            credential=text, expected_challenge=base64url_to_bytes(state["challenge"]), expected_rp_id=rp[1],
            expected_origin=rp[0], require_user_verification=False)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        # The caller's unit of work rolls back on this Problem; the route audits the refusal.
        raise Problem(400, f"The passkey could not be verified: {str(exc)[:200]}",
                      type="passkey-refused") from None
    cred_id = bytes_to_base64url(verified.credential_id)
    if await uow.conn.fetchval("SELECT 1 FROM identity_mfa_factor WHERE credential_id = ?", [cred_id]):
        raise Problem(409, "This passkey is already registered.")
    try:
        transports = [str(t) for t in loads(text).get("response", {}).get("transports", [])][:8]
    except (ValueError, AttributeError):
        transports = []
    fid = new_id()
    await uow.conn.execute(
        "INSERT INTO identity_mfa_factor (id, org_id, user_id, kind, name, created_at, confirmed_at, credential_id,"
        " public_key, sign_count, transports, discoverable, aaguid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [fid, uow.ctx.org_id, user_id, "webauthn", (name or "Passkey")[:200], uow.db.ts(uow.now), uow.db.ts(uow.now),
         cred_id, verified.credential_public_key, verified.sign_count, uow.db.json(transports), True,
         verified.aaguid])
    uow.audit("identity", "mfa-factors", fid, "passkey_registered", None,
              {"user_id": user_id, "name": name, "aaguid": verified.aaguid, "user_verified": verified.user_verified})
    return {"id": fid, "kind": "webauthn", "name": name or "Passkey"}


# -- authentication ----------------------------------------------------------------------


async def authentication_options(conn: Any, rp: tuple[str, str], org_id: str | None = None,
                                 user_id: str | None = None,
                                 verify_user: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Options for navigator.credentials.get: the user's passkeys, or none (usernameless)."""
    allow: list[PublicKeyCredentialDescriptor] = []
    if user_id is not None:
        rows = await conn.fetch(
            "SELECT credential_id, transports FROM identity_mfa_factor WHERE org_id = ? AND user_id = ?"
            " AND kind = 'webauthn'", [org_id, user_id])
        allow = _descriptors(list(rows))
    opts = generate_authentication_options(rp_id=rp[1], timeout=TIMEOUT_MS, allow_credentials=allow or None,
                                           user_verification=UserVerificationRequirement.REQUIRED if verify_user
                                           else UserVerificationRequirement.PREFERRED)
    return loads(options_to_json(opts)), {"challenge": bytes_to_base64url(opts.challenge), "origin": rp[0],
                                          "rp_id": rp[1], "verify_user": verify_user}


async def find_credential(conn: Any, credential: Any) -> tuple[str, str, str] | None:
    """(factor id, org id, user id) of the passkey an assertion names, or None."""
    try:
        data = loads(_as_json(credential))
        raw_id = str(data["rawId"] if "rawId" in data else data["id"])
        cred_id = bytes_to_base64url(base64url_to_bytes(raw_id))
    except (ValueError, KeyError, TypeError):
        raise Problem(400, "credential is not a WebAuthn assertion.", extra={"error": "invalid_request"}) from None
    row = await conn.fetchrow(
        "SELECT id, org_id, user_id FROM identity_mfa_factor WHERE credential_id = ? AND kind = 'webauthn'", [cred_id])
    return (str(row[0]), str(row[1]), str(row[2])) if row else None


async def check_assertion(uow: UnitOfWork, nx: Any, credential: Any, state: dict[str, Any], rp: tuple[str, str],
                          *, user_id: str | None) -> bool:
    """Verify an assertion against the stored passkey and move its counter on; False (and an
    audit line) when it does not verify. `user_id` None: any user's passkey (usernameless)."""
    found = await find_credential(uow.conn, credential)
    if found is None or (user_id is not None and found[2] != user_id):
        uow.audit("identity", "mfa-factors", None, "passkey_refused", None, {"reason": "unknown credential"})
        return False
    fid = found[0]
    if rp != (state["origin"], state["rp_id"]):
        uow.audit("identity", "mfa-factors", fid, "passkey_refused", None, {"reason": "relying party changed"})
        return False
    row = await uow.conn.fetchrow("SELECT public_key, sign_count FROM identity_mfa_factor WHERE id = ?", [fid])
    if row is None:
        return False  # removed a moment ago
    try:
        verified = verify_authentication_response(
            credential=_as_json(credential), expected_challenge=base64url_to_bytes(state["challenge"]),
            expected_rp_id=rp[1], expected_origin=rp[0], credential_public_key=bytes(row[0]),
            credential_current_sign_count=int(row[1] or 0),
            require_user_verification=bool(state.get("verify_user")))
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        reason = str(exc)[:200]
        cloned = "sign count" in reason.lower()
        uow.audit("identity", "mfa-factors", fid, "passkey_clone_suspected" if cloned else "passkey_refused", None,
                  {"user_id": found[2], "reason": reason})
        log.warning("passkey refused", extra={"fields": {"factor": fid, "cloned": cloned}})
        return False
    await uow.conn.execute("UPDATE identity_mfa_factor SET sign_count = ?, last_used_at = ? WHERE id = ?",
                           [verified.new_sign_count, uow.db.ts(uow.now), fid])
    state["user_verified"] = verified.user_verified
    state["user_id"], state["org_id"] = found[2], found[1]
    return True
