"""NEXUS as OpenID Connect relying party: authorization code + PKCE (S256) + state + nonce
through authlib's client; the ID token is verified against the IdP's JWKS with joserfc."""

from __future__ import annotations

import ipaddress
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

CLOCK_SKEW = 60
TIMEOUT = httpx.Timeout(10.0)
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
_CACHE_TTL = 300.0
_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks: dict[str, tuple[float, dict[str, Any]]] = {}


class OidcError(ValueError):
    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


def check_issuer_url(url: str, *, query: bool = False) -> None:
    """https only, except on the loopback (a development IdP); no credentials or fragments."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.username or parts.password or parts.fragment or (parts.query and not query):
        raise ValueError("must be a plain URL without credentials, query or fragment")
    if parts.scheme == "https":
        return
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if parts.scheme != "http" or not loopback:
        raise ValueError("must use https (http only for localhost)")


async def _get_json(url: str) -> dict[str, Any]:
    check_issuer_url(url.split("?", 1)[0])
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as c:
        r = await c.get(url, headers={"Accept": "application/json"})
    if r.status_code != 200:
        raise OidcError(f"{url} answered {r.status_code}", "idp_unreachable")
    data = r.json()
    if not isinstance(data, dict):
        raise OidcError(f"{url} did not answer a JSON object", "idp_unreachable")
    return data


async def discover(issuer: str) -> dict[str, Any]:
    """The IdP's discovery document; its issuer must be the configured one (OIDC Discovery §4.3)."""
    hit = _discovery.get(issuer)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    try:
        doc = await _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    except (httpx.HTTPError, ValueError) as exc:
        if isinstance(exc, OidcError):
            raise
        raise OidcError(f"The identity provider cannot be reached: {str(exc)[:200]}", "idp_unreachable") from None
    if doc.get("issuer") != issuer:
        raise OidcError("The identity provider's discovery document names another issuer.", "issuer_mismatch")
    for k in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(k), str):
            raise OidcError(f"The identity provider's discovery document has no {k}.", "idp_misconfigured")
        try:
            # The same rule as for the issuer: codes and secrets never travel in clear text.
            check_issuer_url(doc[k], query=True)
        except ValueError as exc:
            raise OidcError(f"The identity provider's {k} {exc}.", "idp_misconfigured") from None
    _discovery[issuer] = (time.monotonic() + _CACHE_TTL, doc)
    return doc


async def _keyset(jwks_uri: str, refresh: bool = False) -> KeySet:
    hit = _jwks.get(jwks_uri)
    if hit and hit[0] > time.monotonic() and not refresh:
        return KeySet.import_key_set(hit[1])  # type: ignore[arg-type]
    data = await _get_json(jwks_uri)
    _jwks[jwks_uri] = (time.monotonic() + _CACHE_TTL, data)
    return KeySet.import_key_set(data)  # type: ignore[arg-type]


def new_flow() -> dict[str, str]:
    """The secrets of one sign-in: state, nonce and the PKCE verifier (RFC 7636: 43-128 chars)."""
    return {"state": generate_token(43), "nonce": generate_token(43), "code_verifier": generate_token(64)}


async def authorization_url(idp: dict[str, Any], redirect_uri: str, flow: dict[str, str]) -> str:
    doc = await discover(idp["issuer"])
    async with AsyncOAuth2Client(client_id=idp["client_id"], scope=idp.get("scopes") or "openid email profile",
                                 redirect_uri=redirect_uri, code_challenge_method="S256") as client:
        url, _state = client.create_authorization_url(
            doc["authorization_endpoint"], state=flow["state"], nonce=flow["nonce"],
            code_verifier=flow["code_verifier"])
    return str(url)


async def redeem_code(idp: dict[str, Any], client_secret: str | None, redirect_uri: str, code: str,
                      flow: dict[str, str]) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier) and return the verified ID token claims,
    completed from userinfo when the ID token lacks the email."""
    doc = await discover(idp["issuer"])
    methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if not client_secret:
        auth_method = "none"  # a public client: PKCE alone binds the code to us
    elif "client_secret_basic" in methods:
        auth_method = "client_secret_basic"
    else:
        auth_method = "client_secret_post"
    try:
        async with AsyncOAuth2Client(client_id=idp["client_id"], client_secret=client_secret,
                                     redirect_uri=redirect_uri, code_challenge_method="S256",
                                     token_endpoint_auth_method=auth_method, timeout=10.0) as client:
            token = await client.fetch_token(doc["token_endpoint"], grant_type="authorization_code", code=code,
                                             code_verifier=flow["code_verifier"])
    except httpx.HTTPError as exc:
        raise OidcError(f"The identity provider cannot be reached: {str(exc)[:200]}", "idp_unreachable") from None
    except Exception as exc:  # authlib's OAuthError and friends: the IdP refused the code
        raise OidcError(f"The identity provider refused the code: {str(exc)[:200]}", "code_refused") from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise OidcError("The identity provider returned no ID token.", "no_id_token")
    claims = await verify_id_token(idp, doc, id_token, flow["nonce"])
    if not claims.get("email") and isinstance(doc.get("userinfo_endpoint"), str) and token.get("access_token"):
        info = await _userinfo(doc["userinfo_endpoint"], str(token["access_token"]))
        if info.get("sub") == claims["sub"]:  # OIDC Core §5.3.2: otherwise it must not be used
            claims = {**info, **claims}
    return claims


async def _userinfo(url: str, access_token: str) -> dict[str, Any]:
    check_issuer_url(url)
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as c:
        r = await c.get(url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
    if r.status_code != 200 or "json" not in r.headers.get("content-type", ""):
        return {}
    data = r.json()
    return data if isinstance(data, dict) else {}


async def verify_id_token(idp: dict[str, Any], doc: dict[str, Any], id_token: str, nonce: str) -> dict[str, Any]:
    """Signature against the IdP's JWKS (asymmetric algorithms only: never alg=none or a
    MAC keyed with something public), then iss, aud (+azp), exp, iat and nonce."""
    keys = await _keyset(doc["jwks_uri"])
    try:
        try:
            tok = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        except JoseError:
            # The IdP may have rotated its keys since we cached them: read them once more.
            tok = jwt.decode(id_token, await _keyset(doc["jwks_uri"], refresh=True), algorithms=ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise OidcError(f"The ID token's signature is not valid: {type(exc).__name__}", "bad_signature") from None
    claims: dict[str, Any] = dict(tok.claims)
    registry = JWTClaimsRegistry(
        leeway=CLOCK_SKEW,
        iss={"essential": True, "value": idp["issuer"]},
        aud={"essential": True, "value": idp["client_id"]},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        reason = {"expired_token": "expired"}.get(getattr(exc, "error", ""), "bad_claims")
        raise OidcError(f"The ID token was refused: {exc.description or exc.error}", reason) from None
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != idp["client_id"]:
        raise OidcError("The ID token is meant for several audiences but not authorised for us.", "bad_claims")
    return claims
