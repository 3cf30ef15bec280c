"""Federation endpoints. All are public: they are where browsers arrive from (and are sent
to) identity providers and service providers; each checks what the protocol requires."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from nexus.kernel.context import Principal
from nexus.kernel.errors import Problem
from nexus.kernel.http.app import SESSION_COOKIE, client_addr, nexus_of, read_body
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.records import UnitOfWork

from ..session import _set_cookies
from . import oidc, saml
from .service import (
    SP,
    FederationError,
    audit_refusal,
    claim,
    consume_once,
    find_idp,
    list_idps,
    org_id_for,
    provision,
    put_state,
    saml_keypair,
    secret_box,
    start_session,
    take_state,
)

PREFIX = "/api/v1/identity/federation/{org}"
BINDING_COOKIE = "nexus_fed"
SAML_FORM_LIMIT = 512 * 1024
EMAIL_ATTRS = ("email", "mail", "emailAddress", "urn:oid:0.9.2342.19200300.100.1.3",
               "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")
NAME_ATTRS = ("name", "displayName", "cn", "http://schemas.microsoft.com/identity/claims/displayname",
              "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "preferred_username")


def _base(req: Request) -> str:
    """The public base URL: NEXUS_PUBLIC_URL behind a proxy, else what the browser used."""
    configured = nexus_of(req).settings.public_url
    if configured:
        return configured
    return f"{req.url.scheme}://{req.headers.get('host') or req.url.netloc}"


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never another origin (open redirect), `//host` or `/\\host`."""
    if not value or len(value) > 1000 or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 0x20 for ch in value):
        return "/"
    return value


async def _form(req: Request, limit: int) -> dict[str, str]:
    media = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise Problem(415, "Send the SAML message as application/x-www-form-urlencoded (HTTP-POST binding).")
    body = await read_body(req, limit)
    try:
        parsed = parse_qs(body.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "The form is not valid.") from None
    return {k: v[0] for k, v in parsed.items() if len(v) == 1}


async def _refuse(req: Request, org_id: str, idp: dict[str, Any] | None, protocol: str, exc: Exception,
                  resource: str = "identity-providers") -> Problem:
    reason = getattr(exc, "reason", "invalid_response")
    detail = str(getattr(exc, "detail", None) or exc)
    await audit_refusal(nexus_of(req).db, org_id, idp["id"] if idp else None, protocol, reason, detail,
                        client_addr(req), resource)
    return Problem(exc.status if isinstance(exc, Problem) else 400, detail, type="federation-refused",
                   title="Sign-in refused", extra={"reason": reason})


async def _finish(req: Request, idp: dict[str, Any], subject: str, email: str | None, name: str | None,
                  claims: dict[str, Any], next_path: str, email_trusted: bool = True) -> Response:
    nx = nexus_of(req)
    user_id = await provision(nx, idp, subject, email, name, claims, client_addr(req), email_trusted=email_trusted)
    tokens = await start_session(nx, idp, user_id, client_addr(req), req.headers.get("user-agent"))
    resp = RedirectResponse(_safe_next(next_path), status_code=303, headers={"Cache-Control": "no-store"})
    _set_cookies(req, resp, tokens)
    resp.delete_cookie(BINDING_COOKIE, path=_binding_path(req))
    return resp


def _binding_path(req: Request) -> str:
    return f"/api/v1/identity/federation/{req.path_params['org']}/"


# -- discovery ---------------------------------------------------------------------


async def providers(req: Request) -> Response:
    """The identity providers an org offers on its sign-in page (public: names and links only)."""
    nx = nexus_of(req)
    org = req.path_params["org"]
    org_id = await org_id_for(nx.db, org)
    items = [{"slug": r["slug"], "name": r["name"], "protocol": r["protocol"],
              "login_url": f"/api/v1/identity/federation/{org}/{r['protocol']}/{r['slug']}/login"}
             for r in await list_idps(nx.db, org_id)]
    ep = saml.Endpoints(_base(req), org)
    return json_response({"items": items, "saml": {"sp_metadata_url": ep.sp_entity_id, "acs_url": ep.acs,
                                                   "idp_metadata_url": ep.idp_entity_id, "sso_url": ep.sso}})


# -- SAML: NEXUS as service provider ------------------------------------------------------


async def sp_metadata(req: Request) -> Response:
    nx = nexus_of(req)
    org = req.path_params["org"]
    pair = await saml_keypair(nx, await org_id_for(nx.db, org))
    xml = await asyncio.to_thread(saml.sp_metadata, saml.Endpoints(_base(req), org), pair)
    return Response(xml, media_type="application/samlmetadata+xml")


async def saml_login(req: Request) -> Response:
    """SP-initiated sign-in: a signed AuthnRequest to the IdP (HTTP-Redirect binding)."""
    nx = nexus_of(req)
    org = req.path_params["org"]
    org_id = await org_id_for(nx.db, org)
    idp = await find_idp(nx.db, org_id, slug=req.path_params["idp"], protocol="saml")
    if idp is None:
        raise Problem(404, "No such identity provider.")
    pair = await saml_keypair(nx, org_id)
    relay = secrets.token_urlsafe(16)
    req_id, location = await asyncio.to_thread(saml.authn_request, saml.Endpoints(_base(req), org), pair, idp, relay)
    # The request id is the key: the response's InResponseTo must name it, once.
    await put_state(nx.db, org_id, "saml_request", {"idp_id": idp["id"], "next": _safe_next(req.query_params.get("next"))},
                    key=req_id)
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


async def saml_acs(req: Request) -> Response:
    """Assertion consumer (HTTP-POST binding): SP-initiated answers and IdP-initiated responses."""
    nx = nexus_of(req)
    org_id = await org_id_for(nx.db, req.path_params["org"])
    form = await _form(req, SAML_FORM_LIMIT)
    raw = form.get("SAMLResponse")
    if not raw:
        raise Problem(400, "SAMLResponse is required.")
    idp: dict[str, Any] | None = None
    try:
        try:
            env = saml.peek_response(raw)
        except ValueError as exc:
            raise FederationError(str(exc), "malformed") from None
        if env.issuer:
            idp = await find_idp(nx.db, org_id, protocol="saml", saml_entity_id=env.issuer)
        if idp is None:
            raise FederationError("The response comes from no identity provider this organisation trusts.",
                                  "unknown_issuer")
        outstanding: dict[str, str] = {}
        next_path = _safe_next(form.get("RelayState"))
        if env.in_response_to:
            pending = await take_state(nx.db, env.in_response_to, "saml_request", org_id)
            if pending is None or pending.get("idp_id") != idp["id"]:
                raise FederationError("The response answers no pending sign-in (unknown, used or expired).",
                                      "unknown_request")
            outstanding = {env.in_response_to: pending["next"]}
            next_path = pending["next"]
        pair = await saml_keypair(nx, org_id)
        try:
            a = await asyncio.to_thread(saml.parse_response, saml.Endpoints(_base(req), req.path_params["org"]),
                                        pair, idp, raw, outstanding)
        except ValueError as exc:
            raise FederationError(f"The SAML response is not valid: {exc}", "invalid_response") from None
        if not await consume_once(nx.db, org_id, "saml_assertion", f"{idp['id']}\x00{a.assertion_id}"):
            raise FederationError("This assertion was already used.", "replayed")
        subject = claim(idp, a.attributes, "subject", ()) or a.name_id
        email = claim(idp, a.attributes, "email", EMAIL_ATTRS)
        if email is None and "@" in a.name_id:
            email = a.name_id
        name = claim(idp, a.attributes, "name", NAME_ATTRS)
        return await _finish(req, idp, subject, email, name, dict(a.attributes), next_path)
    except FederationError as exc:
        raise await _refuse(req, org_id, idp, "saml", exc) from None


# -- SAML: NEXUS as identity provider -------------------------------------------------------


async def idp_metadata(req: Request) -> Response:
    nx = nexus_of(req)
    org = req.path_params["org"]
    pair = await saml_keypair(nx, await org_id_for(nx.db, org))
    xml = await asyncio.to_thread(saml.idp_metadata, saml.Endpoints(_base(req), org), pair)
    return Response(xml, media_type="application/samlmetadata+xml")


async def _sps(nx: Any, org_id: str) -> list[dict[str, Any]]:
    from nexus.kernel.context import system_context

    async with UnitOfWork(nx.db, system_context(org_id)) as uow:
        return await uow.find(SP, {"enabled": True})


async def _browser_user(req: Request, org_id: str) -> Principal | None:
    """The signed-in browser's user of this org, from the session cookie (no CSRF token: an
    SSO request is a navigation, and the assertion goes only to the SP's registered ACS)."""
    cookie = req.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    nx = nexus_of(req)
    try:
        p = await nx.auth.authenticate(nx.db, "Bearer " + cookie)
    except Problem:
        return None
    return p if p.org_id == org_id and p.kind == "user" else None


async def idp_sso(req: Request) -> Response:
    """Single sign-on service (HTTP-Redirect and HTTP-POST bindings)."""
    nx = nexus_of(req)
    org = req.path_params["org"]
    org_id = await org_id_for(nx.db, org)
    if req.method == "POST":
        params = await _form(req, SAML_FORM_LIMIT)
        binding = saml.BINDING_HTTP_POST
    else:
        params = {k: v for k, v in req.query_params.items()}
        binding = saml.BINDING_HTTP_REDIRECT
    raw = params.get("SAMLRequest")
    if not raw or len(raw) > SAML_FORM_LIMIT:
        raise Problem(400, "SAMLRequest is required.")
    relay = params.get("RelayState")
    if relay is not None and len(relay) > 800:  # SAML says 80 bytes; some SPs send more
        raise Problem(400, "RelayState is too long.")
    sps = await _sps(nx, org_id)
    pair = await saml_keypair(nx, org_id)
    ep = saml.Endpoints(_base(req), org)
    try:
        if not sps:
            raise FederationError("This organisation has registered no service providers.", "unknown_sp")
        try:
            info = await asyncio.to_thread(saml.read_authn_request, ep, pair, [s["metadata_xml"] for s in sps],
                                           raw, binding)
        except ValueError as exc:
            raise FederationError(f"The AuthnRequest is not valid: {exc}", "invalid_request") from None
    except FederationError as exc:
        raise await _refuse(req, org_id, None, "saml-idp", exc, "saml-sps") from None
    pending = {"request_id": info.request_id, "sp_entity_id": info.sp_entity_id, "acs_url": info.acs_url,
               "relay_state": relay}
    user = await _browser_user(req, org_id)
    if user is None:
        handle = await put_state(nx.db, org_id, "saml_sso", pending)
        resume = f"/api/v1/identity/federation/{org}/saml/idp/resume/{handle}"
        # Through the web app's sign-in page; coming back from it is a same-site navigation,
        # so the (SameSite=Strict) session cookie comes along.
        return RedirectResponse(f"/signin?org={quote(org)}&next={quote(resume, safe='')}", status_code=303)
    return await _respond(req, org_id, user, pending, sps, ep, pair)


async def idp_resume(req: Request) -> Response:
    nx = nexus_of(req)
    org = req.path_params["org"]
    org_id = await org_id_for(nx.db, org)
    user = await _browser_user(req, org_id)
    resume = req.url.path
    if user is None:
        return RedirectResponse(f"/signin?org={quote(org)}&next={quote(resume, safe='')}", status_code=303)
    pending = await take_state(nx.db, req.path_params["handle"], "saml_sso", org_id)
    if pending is None:
        raise Problem(400, "This sign-in request is unknown, used or expired; start again from the application.")
    ep = saml.Endpoints(_base(req), org)
    return await _respond(req, org_id, user, pending, await _sps(nx, org_id), ep, await saml_keypair(nx, org_id))


async def _respond(req: Request, org_id: str, user: Principal, pending: dict[str, Any], sps: list[dict[str, Any]],
                   ep: saml.Endpoints, pair: Any) -> Response:
    sp = next((s for s in sps if s["entity_id"] == pending["sp_entity_id"]), None)
    if sp is None:
        raise Problem(400, "The service provider is no longer registered.")
    info = saml.AuthnRequestInfo(pending["request_id"], pending["sp_entity_id"], pending["acs_url"])
    who = {"id": user.user_id, "email": user.email, "name": user.name, "roles": list(user.roles)}
    message = await asyncio.to_thread(saml.authn_response, ep, pair, [sp["metadata_xml"]], info, who)
    fields = {"SAMLResponse": message}
    if pending.get("relay_state"):
        fields["RelayState"] = pending["relay_state"]
    nonce = secrets.token_urlsafe(16)
    acs = urlsplit(info.acs_url)
    page = saml.post_form_page(info.acs_url, fields, nonce)
    from nexus.apps.identity.service import _ctx

    async with UnitOfWork(nexus_of(req).db, _ctx(user, client_addr(req))) as uow:
        uow.audit("identity", "saml-sps", sp["id"], "assertion_issued", None,
                  {"user_id": user.user_id, "sp_entity_id": sp["entity_id"], "in_response_to": info.request_id})
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; form-action {acs.scheme}://{acs.netloc};"
           " frame-ancestors 'none'; base-uri 'none'")
    return HTMLResponse(page, headers={"Cache-Control": "no-store", "Content-Security-Policy": csp,
                                       "Referrer-Policy": "no-referrer"})


# -- OpenID Connect: NEXUS as relying party ----------------------------------------------------


def _redirect_uri(req: Request, org: str, slug: str) -> str:
    return f"{_base(req)}/api/v1/identity/federation/{org}/oidc/{slug}/callback"


async def oidc_login(req: Request) -> Response:
    nx = nexus_of(req)
    org = req.path_params["org"]
    org_id = await org_id_for(nx.db, org)
    idp = await find_idp(nx.db, org_id, slug=req.path_params["idp"], protocol="oidc")
    if idp is None:
        raise Problem(404, "No such identity provider.")
    flow = oidc.new_flow()
    binding = secrets.token_urlsafe(24)
    try:
        url = await oidc.authorization_url(idp, _redirect_uri(req, org, idp["slug"]), flow)
    except oidc.OidcError as exc:
        raise Problem(502, str(exc), extra={"reason": exc.reason}) from None
    await put_state(nx.db, org_id, "oidc", {
        "idp_id": idp["id"], "nonce": flow["nonce"], "code_verifier": flow["code_verifier"],
        "next": _safe_next(req.query_params.get("next")),
        "binding": hashlib.sha256(binding.encode()).hexdigest()}, key=flow["state"])
    resp = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    # Ties the callback to this browser (login CSRF): Lax, so it rides the IdP's redirect back.
    resp.set_cookie(BINDING_COOKIE, binding, max_age=600, httponly=True, secure=req.url.scheme == "https",
                    samesite="lax", path=_binding_path(req))
    return resp


async def oidc_callback(req: Request) -> Response:
    nx = nexus_of(req)
    org = req.path_params["org"]
    org_id = await org_id_for(nx.db, org)
    idp = await find_idp(nx.db, org_id, slug=req.path_params["idp"], protocol="oidc")
    if idp is None:
        raise Problem(404, "No such identity provider.")
    q = req.query_params
    try:
        state = q.get("state") or ""
        pending = await take_state(nx.db, state, "oidc", org_id)
        if pending is None or pending.get("idp_id") != idp["id"]:
            raise FederationError("The sign-in state is unknown, used or expired; start again.", "unknown_state")
        cookie = req.cookies.get(BINDING_COOKIE) or ""
        if not secrets.compare_digest(hashlib.sha256(cookie.encode()).hexdigest(), pending["binding"]):
            raise FederationError("This sign-in was started in another browser.", "browser_mismatch")
        error = q.get("error")
        if error:
            raise FederationError(f"The identity provider refused: {error[:100]}", "idp_error")
        code = q.get("code")
        if not code or len(code) > 2000:
            raise FederationError("The identity provider sent no code.", "no_code")
        secret = secret_box(nx).open(idp["client_secret_sealed"]) if idp.get("client_secret_sealed") else None
        try:
            claims = await oidc.redeem_code(idp, secret, _redirect_uri(req, org, idp["slug"]), code,
                                            {"nonce": pending["nonce"], "code_verifier": pending["code_verifier"]})
        except oidc.OidcError as exc:
            raise FederationError(str(exc), exc.reason) from None
        if not await consume_once(nx.db, org_id, "oidc_id_token", f"{idp['id']}\x00{claims.get('jti') or state}"):
            raise FederationError("This ID token was already used.", "replayed")
        subject = str(claims["sub"])
        email = claim(idp, claims, "email", ("email",))
        name = claim(idp, claims, "name", ("name", "preferred_username"))
        return await _finish(req, idp, subject, email, name, claims, pending["next"],
                             email_trusted=claims.get("email_verified") is not False)
    except FederationError as exc:
        raise await _refuse(req, org_id, idp, "oidc", exc) from None


ROUTES = [
    RouteDef("GET", f"{PREFIX}/providers", providers, public=True, tags=("federation",),
             summary="Identity providers an organisation offers for sign-in"),
    RouteDef("GET", f"{PREFIX}/saml/metadata", sp_metadata, public=True, tags=("federation",),
             summary="SAML service-provider metadata (NEXUS as SP)"),
    RouteDef("GET", f"{PREFIX}/saml/{{idp}}/login", saml_login, public=True, tags=("federation",),
             summary="Start SAML sign-in (SP-initiated)"),
    RouteDef("POST", f"{PREFIX}/saml/acs", saml_acs, public=True, tags=("federation",),
             request_media="application/x-www-form-urlencoded", summary="SAML assertion consumer service"),
    RouteDef("GET", f"{PREFIX}/saml/idp/metadata", idp_metadata, public=True, tags=("federation",),
             summary="SAML identity-provider metadata (NEXUS as IdP)"),
    RouteDef("GET", f"{PREFIX}/saml/idp/sso", idp_sso, public=True, tags=("federation",),
             summary="SAML single sign-on (HTTP-Redirect binding)"),
    RouteDef("POST", f"{PREFIX}/saml/idp/sso", idp_sso, public=True, tags=("federation",),
             request_media="application/x-www-form-urlencoded", summary="SAML single sign-on (HTTP-POST binding)"),
    RouteDef("GET", f"{PREFIX}/saml/idp/resume/{{handle}}", idp_resume, public=True, tags=("federation",),
             summary="Continue SAML single sign-on after signing in"),
    RouteDef("GET", f"{PREFIX}/oidc/{{idp}}/login", oidc_login, public=True, tags=("federation",),
             summary="Start OpenID Connect sign-in"),
    RouteDef("GET", f"{PREFIX}/oidc/{{idp}}/callback", oidc_callback, public=True, tags=("federation",),
             summary="OpenID Connect redirect URI"),
]
