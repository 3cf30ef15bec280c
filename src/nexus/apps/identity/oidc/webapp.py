"""The NEXUS web app as a first-party client of its own OpenID Connect provider.

The web app is the built-in public client `nexus-web`: it exists in every org without being
registered, is first party (no consent page), and may only use the authorization code flow
with PKCE S256. Its one redirect URI is `<issuer>/auth/callback`, matched exactly; the issuer
is NEXUS_PUBLIC_URL, or, unset, the scheme and Host of the request — the host the browser
itself is talking to, so a link naming another host's callback never matches (the browser,
not the attacker, writes the Host header). Behind a proxy that rewrites Host, set
NEXUS_PUBLIC_URL.

Its codes are not redeemed at /oauth/token (the client is unknown there): the page posts the
code and its PKCE verifier to POST /api/v1/auth/session/code, which spends the code (once,
same checks as every client) and turns it into the web app's HttpOnly cookie session for the
provider sign-in the code was issued in. A code presented twice ends that sign-in.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.context import Context, Principal, request_id_var
from nexus.kernel.http.app import check_csrf, client_addr
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.records import UnitOfWork

from ..routes import _form
from .provider import WEB_CLIENT_ID, Client, Provider, oauth_error

CALLBACK_PATH = "/auth/callback"
WEB_SCOPES = ["openid", "profile", "email", "api"]


def web_client(org_id: str, issuer: str) -> Client:
    """The built-in client, seen from one org (the org of the person signing in)."""
    return Client(record_id=WEB_CLIENT_ID, org_id=org_id, name="NEXUS", client_id=WEB_CLIENT_ID,
                  client_type="public", secret_hash=None, redirect_uris=[issuer + CALLBACK_PATH],
                  post_logout_redirect_uris=[], grant_types=["authorization_code"], scopes=list(WEB_SCOPES),
                  first_party=True, service_user_id=None)


async def sign_in_with_code(req: Request) -> Response:
    """Turn an authorization code of the web app into its cookie session."""
    from ..session import _same_origin, _set_cookies, _user_body
    from .routes import _browser_user, _issuer, _prov

    _same_origin(req)
    check_csrf(req)
    form = await _form(req)
    code, verifier, redirect_uri = form.get("code"), form.get("code_verifier"), form.get("redirect_uri")
    if not code or not verifier or not redirect_uri:
        raise oauth_error("invalid_request", "code, code_verifier and redirect_uri are required.")
    if len(code) > 200 or len(verifier) > 200 or len(redirect_uri) > 2000:
        raise oauth_error("invalid_request", "A parameter is too long.")
    prov: Provider = _prov(req)
    addr = client_addr(req)
    org = await prov.code_org(code)
    client = web_client(org or "", _issuer(req))
    spent = await prov.spend_code(client, code, redirect_uri, verifier, addr)
    browser = await _browser_user(req)
    if browser is None or not spent.session_id or browser.session_id != spent.session_id:
        # A code is only good in the browser sign-in it was issued for (no code injection).
        await prov.audit(client, "oauth_refused", {"reason": "code of another sign-in"}, addr, spent.user_id)
        raise oauth_error("invalid_grant", "The authorization code belongs to another sign-in.")
    tokens = await _reissue(prov, browser, addr)
    resp = Response(b'{"user":' + await _user_body(req, tokens["access_token"]) + b"}",
                    media_type="application/json", headers={"Cache-Control": "no-store"})
    _set_cookies(req, resp, tokens)
    return resp


async def _reissue(prov: Provider, user: Principal, addr: str | None) -> dict[str, object]:
    """New cookie tokens for the sign-in; the sign-in step's own refresh token stops working."""
    assert user.session_id is not None
    nx = prov.nx
    signin = nx.state["identity.signin"]
    async with UnitOfWork(prov.db, Context(user, request_id_var.get(), addr)) as uow:
        await uow.conn.execute("DELETE FROM identity_refresh_token WHERE session_id = ? AND used_at IS NULL",
                               [user.session_id])
        refresh = await signin._new_refresh(uow, user.session_id)
        uow.audit("identity", "oauth-clients", WEB_CLIENT_ID, "oauth_token_issued", None,
                  {"client_id": WEB_CLIENT_ID, "grant": "authorization_code", "session_id": user.session_id})
    access, ttl = nx.auth.issue_access_token(user_id=user.user_id, org_id=user.org_id, session_id=user.session_id)
    return {"access_token": access, "expires_in": ttl, "refresh_token": refresh}


ROUTES = [
    RouteDef("POST", "/api/v1/auth/session/code", sign_in_with_code, public=True, tags=("auth",),
             summary="The web app's session from its authorization code (PKCE)",
             request_schema={"type": "object", "required": ["code", "code_verifier", "redirect_uri"],
                             "properties": {"code": {"type": "string"}, "code_verifier": {"type": "string"},
                                            "redirect_uri": {"type": "string"}}}),
]
