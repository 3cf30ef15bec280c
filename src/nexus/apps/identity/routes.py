"""Identity's routes beyond the generated ones: tokens, sign-out and the caller's profile."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.errors import Problem
from nexus.kernel.http.app import Nexus, client_addr, nexus_of, read_body
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef

from . import schemas
from .service import IdentityAuthBackend, SignIn, count_orgs, permissions_of, register_authenticator


def setup(nx: Nexus) -> None:
    """Become the kernel's authentication backend (also when another app is served alone)."""
    nx.auth.backend = IdentityAuthBackend()
    register_authenticator(nx.auth)
    nx.state["identity.signin"] = SignIn(nx.db, nx)
    _security_setup(nx)
    _directory.setup(nx)
    _oidc.setup(nx)


async def _form(req: Request) -> dict[str, str]:
    media = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_body(req, 16_384)
    if not body.strip():
        return {}  # every field missing: the caller gets invalid_request naming one
    if media == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise Problem(400, "The form is not valid UTF-8.", extra={"error": "invalid_request"}) from None
        out = {}
        for k, v in parsed.items():
            if len(v) != 1:
                raise Problem(400, f"{k} is given more than once.", extra={"error": "invalid_request"})
            out[k] = v[0]
        return _no_nul(out)
    if media == "application/json":
        from nexus.kernel.jsonutil import loads

        try:
            data = loads(body)
        except ValueError:
            raise Problem(400, "The body is not valid JSON.", type="malformed-json", extra={"error": "invalid_request"}) from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise Problem(400, "The body must be an object of strings.", extra={"error": "invalid_request"})
        return _no_nul(data)
    raise Problem(415, "Send application/x-www-form-urlencoded (RFC 6749) or application/json.")


def _no_nul(form: dict[str, str]) -> dict[str, str]:
    # No name, password or token holds a NUL; PostgreSQL text cannot even hold one.
    if any("\x00" in k or "\x00" in v for k, v in form.items()):
        raise Problem(400, "NUL characters are not allowed.", extra={"error": "invalid_request"})
    return form


async def token(req: Request) -> Response:
    """OAuth 2.0 token endpoint: password and refresh_token grants."""
    form = await _form(req)
    signin: SignIn = nexus_of(req).state["identity.signin"]
    grant = form.get("grant_type")
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if grant == "password":
        username, password = form.get("username"), form.get("password")
        if not username or not password:
            raise Problem(400, "username and password are required.", extra={"error": "invalid_request"})
        if len(username) > 320 or len(password) > 1024:
            raise Problem(400, "username or password is too long.", extra={"error": "invalid_request"})
        out = await signin.password_grant(username, password, form.get("org") or None, client_addr(req),
                                          req.headers.get("user-agent"))
        if "mfa_token" in out:
            raise _security.mfa_problem(out)
        return json_response(out, headers=headers)
    if grant == "refresh_token":
        rt = form.get("refresh_token")
        if not rt or len(rt) > 200:
            raise Problem(400, "refresh_token is required.", extra={"error": "invalid_request"})
        return json_response(await signin.refresh_grant(rt, client_addr(req)), headers=headers)
    if grant in _security.GRANTS:
        return await _security.GRANTS[grant](req, form)
    if not grant:
        raise Problem(400, "grant_type is required.", extra={"error": "invalid_request"})
    raise Problem(400, "grant_type must be password, refresh_token, mfa or passkey.", type="unsupported-grant-type",
                  extra={"error": "unsupported_grant_type"})


async def revoke(req: Request) -> Response:
    """RFC 7009 revocation: a refresh or access token ends its session; an API key is revoked."""
    form = await _form(req)
    tok = form.get("token")
    if not tok:
        raise Problem(400, "token is required.", extra={"error": "invalid_request"})
    if len(tok) > 4096:
        return Response(status_code=200)  # nothing this long was ever issued
    await nexus_of(req).state["identity.signin"].revoke(tok, client_addr(req))
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


async def logout(req: Request) -> Response:
    """End the session of the access token used for this request."""
    nx = nexus_of(req)
    p = await nx.principal(req)
    if p.session_id is None:
        raise Problem(400, "API keys have no session; revoke the key instead.")
    await nx.state["identity.signin"].end_session(p.session_id, p.org_id, p.user_id, "signed_out", client_addr(req))
    return Response(status_code=204)


async def me(req: Request) -> Response:
    """The signed-in user, their org, roles and permissions."""
    nx = nexus_of(req)
    p = await nx.principal(req)
    async with nx.db.reader() as conn:
        org = await conn.fetchrow("SELECT id, slug, name FROM identity_org WHERE id = ?", [p.org_id])
        user = await conn.fetchrow(
            "SELECT id, email, name, status, timezone, last_login_at FROM identity_user WHERE id = ?", [p.user_id])
        _perms, roles = await permissions_of(conn, p.org_id, p.user_id)
    out: dict[str, Any] = {
        "id": p.user_id,
        "email": user[1] if user else p.email,
        "name": user[2] if user else p.name,
        "status": user[3] if user else None,
        "timezone": user[4] if user else "UTC",
        "last_login_at": user[5] if user else None,
        "org": {"id": org[0], "slug": org[1], "name": org[2]} if org else None,
        "roles": list(roles),
        "permissions": sorted(p.permissions),
        "auth": {"kind": p.kind, "session_id": p.session_id, "api_key_id": p.api_key_id},
    }
    return json_response(out)


async def setup_status(req: Request) -> Response:
    """Whether this installation has an organisation yet (for the sign-in page)."""
    return json_response({"initialised": await count_orgs(nexus_of(req).db) > 0})


_token_form = {
    "type": "object",
    "properties": {"grant_type": {"enum": ["password", "refresh_token", "mfa", "passkey"]},
                   "username": {"type": "string"}, "password": {"type": "string"}, "org": {"type": "string"},
                   "refresh_token": {"type": "string"}, "mfa_token": {"type": "string"}, "otp": {"type": "string"},
                   "recovery_code": {"type": "string"}, "challenge_token": {"type": "string"},
                   "credential": {"type": "string"}},
    "required": ["grant_type"],
}

ROUTES = [
    RouteDef("POST", "/api/v1/auth/token", token, public=True, tags=("auth",), summary="Get tokens (OAuth 2.0)",
             request_schema=_token_form, request_media="application/x-www-form-urlencoded",
             response_schema=schemas.TokenResponse),
    RouteDef("POST", "/api/v1/auth/revoke", revoke, public=True, tags=("auth",), summary="Revoke a token (RFC 7009)",
             request_media="application/x-www-form-urlencoded",
             request_schema={"type": "object", "properties": {"token": {"type": "string"},
                                                               "token_type_hint": {"type": "string"}},
                             "required": ["token"]}),
    RouteDef("POST", "/api/v1/auth/logout", logout, tags=("auth",), summary="End this session", status=204),
    RouteDef("GET", "/api/v1/identity/me", me, tags=("identity",), summary="The signed-in user"),
    RouteDef("GET", "/api/v1/auth/status", setup_status, public=True, tags=("auth",), summary="Installation status"),
]

# Browser sign-in (cookies + CSRF) sits beside the token endpoint; imported last because it
# builds on the helpers above.
from . import session as _session  # noqa: E402

ROUTES += _session.ROUTES

# Sign-in with external identity providers (SAML 2.0, OIDC) and NEXUS as SAML IdP.
from .federation import routes as _federation  # noqa: E402

ROUTES += _federation.ROUTES
# Multi-factor sign-in, passkeys, step-up, password reset, sessions and history (security/).
from .security import ROUTES as _SECURITY_ROUTES  # noqa: E402
from .security import routes as _security  # noqa: E402
from .security import setup as _security_setup  # noqa: E402

ROUTES += _SECURITY_ROUTES
# Directory and provisioning: SCIM 2.0 (/scim/v2) and LDAP sync; its setup runs in setup().
from . import directory as _directory  # noqa: E402
from .directory import scim as _scim  # noqa: E402

ROUTES += _scim.ROUTES
# The OpenID Connect provider and OAuth 2.1 server (its own subpackage).
from .oidc import routes as _oidc  # noqa: E402

ROUTES += _oidc.ROUTES
# The web app signs in through the provider (code + PKCE → cookie session).
from .oidc import webapp as _oidc_web  # noqa: E402

ROUTES += _oidc_web.ROUTES
