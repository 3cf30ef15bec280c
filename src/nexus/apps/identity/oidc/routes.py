"""HTTP side of the OpenID Connect provider. Thin: parse, call the Provider, answer.

Browser-facing endpoints (authorize, logout) answer with pages or redirects; an error
before the client and its redirect URI are known to be genuine is shown as a page and
never redirected (no open redirect). Machine endpoints answer JSON (RFC 6749 errors that
are also problem+json).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from nexus.kernel.context import Principal
from nexus.kernel.errors import Problem
from nexus.kernel.http.app import CSRF_COOKIE, SESSION_COOKIE, Nexus, client_addr, nexus_of
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef

from ..routes import _form
from .clients import API_SCOPE, GRANT_TYPES, OIDC_SCOPES
from .keys import ALG
from .pages import consent_page, error_page, signed_out_page
from .provider import WEB_CLIENT_ID, Client, Provider, api_audience, oauth_error, parse_scope, purge_expired

_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url(sha256) without padding
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PURGE_JOB = "identity.oidc.purge"


def setup(nx: Nexus) -> None:
    provider = Provider(nx)
    nx.state["identity.oidc"] = provider
    # The kernel hands every bearer token it did not issue itself to this verifier.
    nx.auth.token_verifier = provider.principal_for_token
    jobs = nx.state.get("jobs")
    if jobs is not None and PURGE_JOB not in jobs.types:
        async def purge(_ctx: Any, _payload: dict[str, Any]) -> None:
            await purge_expired(nx.db)

        jobs.register(PURGE_JOB, purge, max_attempts=3, timeout=600)
        jobs.schedule(PURGE_JOB, "17 4 * * *", PURGE_JOB)  # daily, 04:17 UTC
    limiter = nx.state.get("ratelimit")
    if limiter is not None:
        for path in ("/oauth/token", "/oauth/introspect", "/oauth/revoke", "/oauth/authorize"):
            limiter.assign("POST", path, "auth")


def _prov(req: Request) -> Provider:
    return nexus_of(req).state["identity.oidc"]  # type: ignore[no-any-return]


def _issuer(req: Request) -> str:
    return _prov(req).issuer_for(req.url.scheme, req.headers.get("host", "localhost"))


def _single(items: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in items:
        if k in out:
            raise Problem(400, f"{k} is given more than once.", extra={"error": "invalid_request"})
        if len(v) > 4096:
            raise Problem(400, f"{k} is too long.", extra={"error": "invalid_request"})
        out[k] = v
    return out


def _redirect(uri: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    sep = "&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")
    return RedirectResponse(uri + sep + query, status_code=302, headers=_NO_STORE)


async def _browser_user(req: Request) -> Principal | None:
    """The person signed in to NEXUS in this browser (the web app's cookie session)."""
    cookie = req.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    nx = nexus_of(req)
    try:
        p = await nx.auth.authenticate(nx.db, "Bearer " + cookie)
    except Problem:
        return None
    return p if p.kind == "user" and p.session_id else None


def _cors_for(req: Request, client: Client) -> dict[str, str]:
    """A browser app (public client) may call the token and revocation endpoints from the
    origin of one of its redirect URIs. Form posts are CORS "simple requests" (no preflight);
    no cookies are involved, so nothing ambient is exposed."""
    origin = req.headers.get("origin")
    if not origin or not client.public:
        return {}
    for uri in client.redirect_uris:
        parts = urlsplit(uri)
        if parts.scheme in ("http", "https") and f"{parts.scheme}://{parts.netloc}" == origin:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


# Bearer-token endpoints read no cookies: any origin may call them (the token is the credential).
_OPEN_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Authorization",
              "Access-Control-Allow-Methods": "GET, POST", "Access-Control-Max-Age": "600"}


async def preflight(req: Request) -> Response:
    return Response(status_code=204, headers=_OPEN_CORS)


# -- discovery ---------------------------------------------------------------------------


async def discovery(req: Request) -> Response:
    iss = _issuer(req)
    doc = {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/oauth/authorize",
        "token_endpoint": f"{iss}/oauth/token",
        "userinfo_endpoint": f"{iss}/oauth/userinfo",
        "jwks_uri": f"{iss}/.well-known/jwks.json",
        "end_session_endpoint": f"{iss}/oauth/logout",
        "introspection_endpoint": f"{iss}/oauth/introspect",
        "revocation_endpoint": f"{iss}/oauth/revoke",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALG],
        "scopes_supported": [*OIDC_SCOPES, API_SCOPE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid",
                             "name", "preferred_username", "email", "email_verified", "org", "org_slug", "roles"],
        "prompt_values_supported": ["none", "consent"],
        "authorization_response_iss_parameter_supported": True,
        "api_audience": api_audience(iss),
    }
    return json_response(doc, headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


async def jwks(req: Request) -> Response:
    return json_response(await _prov(req).keys.jwks(),
                         headers={"Cache-Control": "public, max-age=60", "Access-Control-Allow-Origin": "*"})


# -- authorization endpoint ------------------------------------------------------------------


async def authorize(req: Request) -> Response:
    prov = _prov(req)
    try:
        params = _single(list(req.query_params.multi_items()))
    except Problem as exc:
        return error_page(exc.detail)
    client = await prov.client(params.get("client_id"))
    web = client is None and params.get("client_id") == WEB_CLIENT_ID
    if web:
        from .webapp import web_client

        signed_in = await _browser_user(req)
        if signed_in is None:
            # The web app itself asked: it shows its own sign-in page, then starts again.
            return RedirectResponse("/", status_code=302, headers=_NO_STORE)
        client = web_client(signed_in.org_id, _issuer(req))
    if client is None:
        return error_page("The application (client_id) is unknown.")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri or redirect_uri not in client.redirect_uris:
        # Exact match only: a trailing slash, other case, extra query, user@host or port is
        # another URI, and an error about it must not be sent there.
        await prov.audit(client, "oauth_refused", {"reason": "redirect_uri not registered",
                                                   "redirect_uri": (redirect_uri or "")[:300]}, client_addr(req))
        return error_page("The redirect_uri is not registered for this application.")
    return await _authorize(req, prov, client, params, redirect_uri)


async def _authorize(req: Request, prov: Provider, client: Client, params: dict[str, str],
                     redirect_uri: str) -> Response:
    issuer = _issuer(req)
    state = params.get("state")
    addr = client_addr(req)

    async def refuse(error: str, detail: str, user_id: str | None = None) -> Response:
        await prov.audit(client, "oauth_refused", {"reason": detail, "error": error}, addr, user_id)
        return _redirect(redirect_uri, {"error": error, "error_description": detail, "state": state, "iss": issuer})

    if "authorization_code" not in client.grant_types:
        return await refuse("unauthorized_client", "This application may not use the authorization code flow.")
    if params.get("response_type") != "code":
        return await refuse("unsupported_response_type", "Only response_type=code is supported.")
    scopes = parse_scope(params.get("scope"))
    if not scopes:
        return await refuse("invalid_scope", "scope is required.")
    bad = [s for s in scopes if s not in client.scopes]
    if bad:
        return await refuse("invalid_scope", f"Scopes not allowed for this application: {' '.join(bad)}.")
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge is not None or method is not None:
        if method != "S256":
            return await refuse("invalid_request", "code_challenge_method must be S256 (plain is not accepted).")
        if not challenge or not _CHALLENGE.match(challenge):
            return await refuse("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters).")
    elif client.public:
        return await refuse("invalid_request", "PKCE (code_challenge with S256) is required for this application.")
    nonce = params.get("nonce")
    if nonce is not None and len(nonce) > 500:
        return await refuse("invalid_request", "nonce is too long.")
    prompt = set((params.get("prompt") or "").split())
    user = await _browser_user(req)
    if user is None:
        if "none" in prompt:
            return await refuse("login_required", "Nobody is signed in.")
        # The web app signs the person in, then sends the browser back here.
        back = req.url.path + "?" + req.url.query
        return RedirectResponse("/?return_to=" + quote(back, safe=""), status_code=302, headers=_NO_STORE)
    if user.org_id != client.org_id:
        return await refuse("access_denied", "This application belongs to another organisation.", user.user_id)
    if not client.first_party and ("consent" in prompt or not await prov.consented(
            user.org_id, user.user_id, client.client_id, scopes)):
        if "none" in prompt:
            return await refuse("consent_required", "The user has not allowed this application yet.", user.user_id)
        sealed = prov.seal_request({"client_id": client.client_id, "redirect_uri": redirect_uri, "scope": scopes,
                                    "state": state, "nonce": nonce, "code_challenge": challenge,
                                    "sid": user.session_id, "iss": issuer})
        return consent_page(client.name, user.email or "", scopes, sealed, req.cookies.get(CSRF_COOKIE) or "")
    code = await prov.issue_code(client, user, redirect_uri=redirect_uri, scopes=scopes, nonce=nonce,
                                 challenge=challenge, issuer=issuer, addr=addr, consent=False)
    return _redirect(redirect_uri, {"code": code, "state": state, "iss": issuer})


async def decide(req: Request) -> Response:
    """The consent form's POST: allow or deny."""
    prov = _prov(req)
    origin = req.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != req.headers.get("host", ""):
        return error_page("This form was sent from another site.", 403)
    form = await _form(req)
    user = await _browser_user(req)
    if user is None:
        return error_page("You are no longer signed in; start again from the application.", 401)
    expected = req.cookies.get(CSRF_COOKIE)
    got = form.get("csrf_token")
    if not expected or not got or not hmac.compare_digest(expected, got):
        async with _uow_audit(prov, user, req) as audit:
            audit("oauth_refused", {"reason": "consent CSRF token missing or wrong"})
        return error_page("The form has expired or was not sent from this page; start again.", 403)
    params = prov.open_request(form.get("request") or "")
    if params is None or params.get("sid") != user.session_id:
        async with _uow_audit(prov, user, req) as audit:
            audit("oauth_refused", {"reason": "consent request invalid, expired or of another session"})
        return error_page("This consent request is invalid or has expired; start again from the application.", 400)
    client = await prov.client(params["client_id"])
    redirect_uri = params["redirect_uri"]
    if client is None or redirect_uri not in client.redirect_uris or client.org_id != user.org_id:
        return error_page("The application has changed or been removed; start again from it.", 400)
    state, issuer = params.get("state"), params["iss"]
    if form.get("decision") != "allow":
        await prov.audit(client, "oauth_consent_denied", {"scopes": params["scope"]}, client_addr(req), user.user_id)
        return _redirect(redirect_uri, {"error": "access_denied", "error_description": "The user denied access.",
                                        "state": state, "iss": issuer})
    code = await prov.issue_code(client, user, redirect_uri=redirect_uri, scopes=list(params["scope"]),
                                 nonce=params.get("nonce"), challenge=params.get("code_challenge"), issuer=issuer,
                                 addr=client_addr(req), consent=True)
    return _redirect(redirect_uri, {"code": code, "state": state, "iss": issuer})


class _uow_audit:
    def __init__(self, prov: Provider, user: Principal, req: Request) -> None:
        from nexus.kernel.context import Context, request_id_var
        from nexus.kernel.records import UnitOfWork

        self.uow = UnitOfWork(prov.db, Context(user, request_id_var.get(), client_addr(req)))

    async def __aenter__(self) -> Any:
        await self.uow.__aenter__()
        return lambda action, data: self.uow.audit("identity", "oauth-clients", None, action, None, data)

    async def __aexit__(self, *exc: Any) -> None:
        await self.uow.__aexit__(*exc)


# -- token, introspection, revocation --------------------------------------------------------


def _client_credentials(req: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    header = req.headers.get("authorization")
    if header and header[:6].lower() == "basic ":
        if "client_secret" in form:
            raise oauth_error("invalid_request", "Use one client authentication method, not two.")
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise oauth_error("invalid_client", "The Basic credentials are malformed.", 401,
                              {"WWW-Authenticate": 'Basic realm="nexus"'}) from None
        cid, sep, secret = raw.partition(":")
        if not sep:
            raise oauth_error("invalid_client", "The Basic credentials are malformed.", 401,
                              {"WWW-Authenticate": 'Basic realm="nexus"'})
        # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        cid, secret = unquote(cid.replace("+", " ")), unquote(secret.replace("+", " "))
        if form.get("client_id") not in (None, cid):
            raise oauth_error("invalid_request", "client_id differs from the authenticated client.")
        return cid, secret
    return form.get("client_id"), form.get("client_secret")


async def token(req: Request) -> Response:
    prov = _prov(req)
    form = await _form(req)
    addr = client_addr(req)
    cid, secret = _client_credentials(req, form)
    client = await prov.authenticate_client(cid, secret, addr)
    try:
        out = await _grant(req, prov, client, form, addr)
    except Problem as exc:
        exc.headers = {**exc.headers, **_cors_for(req, client)}  # so that a browser app can read the error
        raise
    return json_response(out, headers={**_NO_STORE, **_cors_for(req, client)})


async def _grant(req: Request, prov: Provider, client: Client, form: dict[str, str],
                 addr: str | None) -> dict[str, Any]:
    grant = form.get("grant_type")
    if grant == "authorization_code":
        code = form.get("code")
        if not code or len(code) > 200:
            raise oauth_error("invalid_request", "code is required.")
        out = await prov.exchange_code(client, code, form.get("redirect_uri"), form.get("code_verifier"), addr)
    elif grant == "refresh_token":
        rt = form.get("refresh_token")
        if not rt:
            raise oauth_error("invalid_request", "refresh_token is required.")
        out = await prov.refresh(client, rt, form.get("scope"), addr)
    elif grant == "client_credentials":
        out = await prov.client_credentials(client, form.get("scope"), _issuer(req), addr)
    elif not grant:
        raise oauth_error("invalid_request", "grant_type is required.")
    else:
        await prov.audit(client, "oauth_refused", {"reason": "unsupported grant type", "grant": grant[:50]}, addr)
        raise oauth_error("unsupported_grant_type", "grant_type must be authorization_code, refresh_token or "
                                                    "client_credentials.")
    return out


async def introspect(req: Request) -> Response:
    prov = _prov(req)
    form = await _form(req)
    cid, secret = _client_credentials(req, form)
    client = await prov.authenticate_client(cid, secret, client_addr(req))
    if client.public:
        raise oauth_error("invalid_client", "Introspection is for confidential clients.", 401,
                          {"WWW-Authenticate": 'Basic realm="nexus"'})
    tok = form.get("token")
    if not tok:
        raise oauth_error("invalid_request", "token is required.")
    return json_response(await prov.introspect(client, tok), headers=_NO_STORE)


async def revoke(req: Request) -> Response:
    prov = _prov(req)
    form = await _form(req)
    cid, secret = _client_credentials(req, form)
    client = await prov.authenticate_client(cid, secret, client_addr(req))
    tok = form.get("token")
    if not tok:
        raise oauth_error("invalid_request", "token is required.")
    await prov.revoke(client, tok, client_addr(req))
    return Response(status_code=200, headers={**_NO_STORE, **_cors_for(req, client)})


async def userinfo(req: Request) -> Response:
    header = req.headers.get("authorization") or ""
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Problem(401, "Send the access token as 'Authorization: Bearer …'.", type="unauthenticated",
                      headers={"WWW-Authenticate": 'Bearer realm="nexus"'})
    try:
        claims = await _prov(req).userinfo(credential.strip())
    except Problem as exc:
        if exc.status == 401:
            exc.headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        exc.headers = {**exc.headers, "Access-Control-Allow-Origin": "*"}
        raise
    return json_response(claims, headers={**_NO_STORE, "Access-Control-Allow-Origin": "*"})


# -- RP-initiated logout ---------------------------------------------------------------------


async def logout(req: Request) -> Response:
    prov = _prov(req)
    try:
        params = _single(list(req.query_params.multi_items()))
        if req.method == "POST":
            params.update(await _form(req))
    except Problem as exc:
        return error_page(exc.detail)
    hint = params.get("id_token_hint")
    if not hint:
        return error_page("id_token_hint is required to sign out from an application.")
    claims = await prov.id_token_hint(hint)
    aud = claims.get("aud") if claims else None
    if claims is None or not isinstance(aud, str) or not isinstance(claims.get("sub"), str):
        return error_page("The id_token_hint is not a token this server issued.")
    if params.get("client_id") not in (None, aud):
        return error_page("client_id does not match the id_token_hint.")
    client = await prov.client(aud)
    if client is None:
        return error_page("The application is unknown.")
    target = params.get("post_logout_redirect_uri")
    if target is not None and target not in client.post_logout_redirect_uris:
        await prov.audit(client, "oauth_refused", {"reason": "post_logout_redirect_uri not registered"},
                         client_addr(req), claims["sub"])
        return error_page("The post_logout_redirect_uri is not registered for this application.")
    sid = claims.get("sid") if isinstance(claims.get("sid"), str) else None
    await prov.end_session(client, claims["sub"], str(claims.get("org") or client.org_id), sid, client_addr(req))
    resp = _redirect(target, {"state": params.get("state")}) if target else signed_out_page()
    browser = await _browser_user(req)
    if browser is None or browser.session_id == sid:
        from ..session import _clear_cookies

        _clear_cookies(resp)
    return resp


_form_body = {"type": "object", "properties": {"grant_type": {"enum": list(GRANT_TYPES)}, "code": {"type": "string"},
                                               "redirect_uri": {"type": "string"},
                                               "code_verifier": {"type": "string"},
                                               "refresh_token": {"type": "string"}, "scope": {"type": "string"},
                                               "client_id": {"type": "string"},
                                               "client_secret": {"type": "string"}},
              "required": ["grant_type"]}
_token_body = {"type": "object", "properties": {"token": {"type": "string"}, "token_type_hint": {"type": "string"},
                                                "client_id": {"type": "string"},
                                                "client_secret": {"type": "string"}}, "required": ["token"]}
_FORM = "application/x-www-form-urlencoded"

ROUTES = [
    RouteDef("GET", "/.well-known/openid-configuration", discovery, public=True, tags=("oidc",),
             summary="OpenID Connect discovery"),
    RouteDef("GET", "/.well-known/jwks.json", jwks, public=True, tags=("oidc",), summary="Signing keys (JWKS)"),
    RouteDef("GET", "/oauth/authorize", authorize, public=True, tags=("oidc",),
             summary="Authorization endpoint (code + PKCE)"),
    RouteDef("POST", "/oauth/authorize", decide, public=True, tags=("oidc",), summary="Consent decision",
             request_media=_FORM),
    RouteDef("POST", "/oauth/token", token, public=True, tags=("oidc",), summary="Token endpoint",
             request_schema=_form_body, request_media=_FORM),
    RouteDef("POST", "/oauth/introspect", introspect, public=True, tags=("oidc",),
             summary="Token introspection (RFC 7662)", request_schema=_token_body, request_media=_FORM),
    RouteDef("POST", "/oauth/revoke", revoke, public=True, tags=("oidc",), summary="Token revocation (RFC 7009)",
             request_schema=_token_body, request_media=_FORM),
    RouteDef("GET", "/oauth/userinfo", userinfo, public=True, tags=("oidc",), summary="UserInfo"),
    RouteDef("POST", "/oauth/userinfo", userinfo, public=True, tags=("oidc",), summary="UserInfo"),
    RouteDef("OPTIONS", "/oauth/userinfo", preflight, public=True, tags=("oidc",), summary="CORS preflight",
             status=204),
    RouteDef("GET", "/oauth/logout", logout, public=True, tags=("oidc",), summary="RP-initiated logout"),
    RouteDef("POST", "/oauth/logout", logout, public=True, tags=("oidc",), summary="RP-initiated logout",
             request_media=_FORM),
]
