"""Browser sessions: the web app signs in here and holds its tokens in cookies.

* `nexus_access` — the access token, HttpOnly, SameSite=Strict, sent with every request;
* `nexus_refresh` — the rotating refresh token, HttpOnly, only sent to /api/v1/auth/session;
* `nexus_csrf` — a random value the page reads and echoes as `X-CSRF-Token` on every write
  (double submit; the kernel checks it for cookie-authenticated writes).
A sign-in from another site's page (login CSRF) is refused by checking Origin.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.errors import Problem
from nexus.kernel.http.app import (
    CSRF_COOKIE,
    REFRESH_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    client_addr,
    nexus_of,
)
from nexus.kernel.http.routing import RouteDef

from .routes import _form, me

REFRESH_PATH = "/api/v1/auth/session"


def _same_origin(req: Request) -> None:
    origin = req.headers.get("origin")
    if origin is None or origin == "null":
        return
    host = req.headers.get("host", "")
    if urlsplit(origin).netloc != host:
        raise Problem(403, "Sign-in from another site is not allowed.", type="csrf")


def _set_cookies(req: Request, resp: Response, tokens: dict[str, object]) -> None:
    secure = req.url.scheme == "https"
    nx = nexus_of(req)
    resp.set_cookie(SESSION_COOKIE, str(tokens["access_token"]), max_age=int(str(tokens["expires_in"])),
                    httponly=True, secure=secure, samesite="strict", path="/")
    resp.set_cookie(REFRESH_COOKIE, str(tokens["refresh_token"]), max_age=nx.settings.refresh_token_ttl,
                    httponly=True, secure=secure, samesite="strict", path=REFRESH_PATH)
    resp.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), max_age=nx.settings.refresh_token_ttl,
                    httponly=False, secure=secure, samesite="strict", path="/")


def _clear_cookies(resp: Response) -> None:
    for name, path in ((SESSION_COOKIE, "/"), (REFRESH_COOKIE, REFRESH_PATH), (CSRF_COOKIE, "/")):
        resp.delete_cookie(name, path=path)


async def _user_body(req: Request, access_token: str) -> bytes:
    nx = nexus_of(req)
    req.scope["nexus.principal"] = await nx.auth.authenticate(nx.db, "Bearer " + access_token)
    return bytes((await me(req)).body)


async def sign_in(req: Request) -> Response:
    """Sign in the browser: sets the session cookies and returns the user."""
    _same_origin(req)
    form = await _form(req)
    username, password = form.get("username"), form.get("password")
    if not username or not password:
        raise Problem(400, "username and password are required.", extra={"error": "invalid_request"})
    if len(username) > 320 or len(password) > 1024:
        raise Problem(400, "username or password is too long.", extra={"error": "invalid_request"})
    signin = nexus_of(req).state["identity.signin"]
    tokens = await signin.password_grant(username, password, form.get("org") or None, client_addr(req),
                                         req.headers.get("user-agent"))
    if "mfa_token" in tokens:
        # A second factor is due: no cookies yet; the page finishes at /api/v1/auth/session/mfa.
        return Response(_quote_obj(tokens), media_type="application/json", headers={"Cache-Control": "no-store"})
    user = await _user_body(req, tokens["access_token"])
    resp = Response(b'{"user":' + user + b"}", media_type="application/json",
                    headers={"Cache-Control": "no-store"})
    _set_cookies(req, resp, tokens)
    return resp


async def refresh(req: Request) -> Response:
    """Rotate the session cookies (the page calls this when a request answers 401)."""
    check_csrf(req)
    token = req.cookies.get(REFRESH_COOKIE)
    if not token:
        raise Problem(401, "No session; sign in.", headers={"WWW-Authenticate": 'Bearer realm="nexus"'})
    signin = nexus_of(req).state["identity.signin"]
    try:
        tokens = await signin.refresh_grant(token, client_addr(req))
    except Problem as exc:
        resp = Response(b'{"type":"https://nexus.dev/problems/session-ended","title":"Session ended","status":401,'
                        b'"detail":' + _quote(exc.detail) + b"}", status_code=401,
                        media_type="application/problem+json")
        _clear_cookies(resp)
        return resp
    user = await _user_body(req, tokens["access_token"])
    resp = Response(b'{"user":' + user + b"}", media_type="application/json", headers={"Cache-Control": "no-store"})
    _set_cookies(req, resp, tokens)
    return resp


async def sign_out(req: Request) -> Response:
    """End the browser's session and clear its cookies."""
    check_csrf(req)
    token = req.cookies.get(REFRESH_COOKIE)
    if token:
        await nexus_of(req).state["identity.signin"].revoke(token, client_addr(req))
    resp = Response(status_code=204)
    _clear_cookies(resp)
    return resp


def _quote_obj(value: object) -> bytes:
    from nexus.kernel.jsonutil import dumps

    return dumps(value)


def _quote(text: str) -> bytes:
    from nexus.kernel.jsonutil import dumps

    return dumps(text)


ROUTES = [
    RouteDef("POST", "/api/v1/auth/session", sign_in, public=True, tags=("auth",), summary="Browser sign-in (cookies)",
             request_schema={"type": "object", "required": ["username", "password"],
                             "properties": {"username": {"type": "string"}, "password": {"type": "string"},
                                            "org": {"type": "string"}}}),
    RouteDef("POST", "/api/v1/auth/session/refresh", refresh, public=True, tags=("auth",),
             summary="Rotate the browser session"),
    RouteDef("DELETE", "/api/v1/auth/session", sign_out, public=True, tags=("auth",), summary="Browser sign-out",
             status=204),
]
