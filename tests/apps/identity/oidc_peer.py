"""A real OpenID Connect provider for tests, on its own port with its own keys: discovery,
authorization endpoint (code + PKCE S256 required), token endpoint (client_secret_basic),
JWKS and userinfo. It signs in `user` without asking; `id_token_overrides` and
`sign_with_foreign_key` make it misbehave the way an attacker would."""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


class OidcPeer:
    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris: set[str] = set()
        self.key = RSAKey.generate_key(2048, parameters={"kid": "peer-1", "use": "sig"})
        self.foreign = RSAKey.generate_key(2048, parameters={"kid": "peer-1", "use": "sig"})
        self.user: dict[str, Any] = {}
        self.id_token_overrides: dict[str, Any] = {}
        self.sign_with_foreign_key = False
        self.discovery_overrides: dict[str, Any] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, str]] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.issuer = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
            Route("/jwks", self.jwks),
            Route("/userinfo", self.userinfo),
        ])
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> OidcPeer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test OIDC provider did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    # -- endpoints ---------------------------------------------------------------------
    async def discovery(self, req: Request) -> Response:
        i = self.issuer
        return JSONResponse({
            "issuer": i, "authorization_endpoint": f"{i}/authorize", "token_endpoint": f"{i}/token",
            "jwks_uri": f"{i}/jwks", "userinfo_endpoint": f"{i}/userinfo",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            **self.discovery_overrides,
        })

    async def authorize(self, req: Request) -> Response:
        q = req.query_params
        if q.get("client_id") != self.client_id or q.get("redirect_uri") not in self.redirect_uris:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        if q.get("response_type") != "code" or "openid" not in (q.get("scope") or "").split():
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE S256 required"}, 400)
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"challenge": q["code_challenge"], "nonce": q.get("nonce"),
                            "redirect_uri": q["redirect_uri"], "at": time.time()}
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}", 302)

    async def token(self, req: Request) -> Response:
        auth = req.headers.get("authorization", "")
        want = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if auth != want:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = {k: v[0] for k, v in parse_qs((await req.body()).decode()).items()}
        self.token_requests.append(form)
        grant = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri"}, status_code=400)
        if create_s256_code_challenge(form.get("code_verifier", "")) != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verifier"}, status_code=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, "nonce": grant["nonce"],
                  **self.user, **self.id_token_overrides}
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.foreign if self.sign_with_foreign_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "peer-1"}, claims, key)
        access = secrets.token_urlsafe(24)
        self.tokens[access] = dict(self.user)
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token})

    async def jwks(self, req: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def userinfo(self, req: Request) -> Response:
        token = req.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(self.tokens[token])
