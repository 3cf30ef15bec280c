"""Authentication: bearer access tokens (JWT, HS256) and API keys.

The kernel verifies tokens; what a session or key grants is answered by the
identity app, registered as the `AuthBackend` at start (the kernel imports no app).
Resolved principals are cached briefly; the identity app invalidates an entry the
moment it revokes a session, key or role, and the TTL bounds staleness across processes.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import jwt

from nexus.kernel.cache import TTLCache
from nexus.kernel.context import Principal
from nexus.kernel.errors import Problem, unauthenticated

if TYPE_CHECKING:
    from nexus.kernel.db import Database

API_KEY_PREFIX = "nxk_"
ISSUER = "nexus"


class AuthBackend(Protocol):
    async def principal_for_session(self, db: Database, session_id: str, user_id: str, org_id: str) -> Principal | None: ...
    async def principal_for_api_key(self, db: Database, key_id: str, secret_hash: str) -> Principal | None: ...


class Authenticator:
    def __init__(self, secret_key: str, access_ttl: int) -> None:
        self._signing_key = hashlib.sha256(b"nexus-access-token\x00" + secret_key.encode()).digest()
        self.access_ttl = access_ttl
        self.backend: AuthBackend | None = None
        self.cache = TTLCache(ttl=5.0)
        # Called after every invalidate_all(): with Redis, kernel/cache.py publishes there so
        # that every other process clears its principal cache too.
        self.on_invalidate: list[Callable[[], None]] = []
        # Bearer tokens the kernel did not issue (identity's OAuth access tokens, RS256) go to
        # this verifier: (principal, expiry) or a 401 Problem. Ours all start with the same
        # JOSE header, so telling them apart costs a prefix comparison.
        self.token_verifier: Callable[[Database, str], Awaitable[tuple[Principal, float]]] | None = None
        self._own_prefix = jwt.encode({}, self._signing_key, algorithm="HS256").split(".", 1)[0] + "."

    # -- tokens --------------------------------------------------------------
    def issue_access_token(self, *, user_id: str, org_id: str, session_id: str) -> tuple[str, int]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user_id,
            "org": org_id,
            "sid": session_id,
            "iat": now,
            "exp": now + self.access_ttl,
            "typ": "access",
        }
        return jwt.encode(claims, self._signing_key, algorithm="HS256"), self.access_ttl

    def decode_access_token(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._signing_key,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "org"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("The access token has expired.") from None
        except jwt.PyJWTError:
            raise unauthenticated("The access token is invalid.") from None
        if claims.get("typ") != "access":
            raise unauthenticated("The access token is invalid.")
        return claims

    # -- per request ---------------------------------------------------------
    async def authenticate(self, db: Database, authorization: str | None, api_key_header: str | None = None) -> Principal:
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            if scheme.lower() != "bearer" or not credential:
                raise unauthenticated("Use 'Authorization: Bearer <token>'.")
            credential = credential.strip()
        elif api_key_header:
            credential = api_key_header.strip()
        else:
            raise unauthenticated()
        cached = self.cache.get(credential)
        if cached is not None:
            principal, expires = cached
            if expires is None or expires > time.time():
                return principal  # type: ignore[no-any-return]
            self.cache.delete(credential)
        if self.backend is None:
            raise unauthenticated("No identity provider is installed.")
        expires_at: float | None = None
        found: Principal | None
        if credential.startswith(API_KEY_PREFIX):
            key_id, secret_hash = split_api_key(credential)
            found = await self.backend.principal_for_api_key(db, key_id, secret_hash)
            if found is None:
                raise unauthenticated("The API key is invalid or revoked.")
        elif self.token_verifier is not None and not credential.startswith(self._own_prefix):
            found, expires_at = await self.token_verifier(db, credential)
        else:
            claims = self.decode_access_token(credential)
            found = await self.backend.principal_for_session(db, claims["sid"], claims["sub"], claims["org"])
            if found is None:
                raise unauthenticated("The session has ended; sign in again.")
            expires_at = claims["exp"]
        self.cache.set(credential, (found, expires_at))
        return found

    def invalidate_all(self) -> None:
        """Called by identity on any revocation or grant change (cheap: entries rebuild in one query)."""
        self.cache.clear()
        for fn in self.on_invalidate:
            fn()


STEP_UP_PATH = "/api/v1/auth/step-up"


def require_recent_auth(principal: Principal, max_age: int = 600, *, action: str = "this action") -> None:
    """Refuse a sensitive action unless the caller proved who they are within max_age seconds
    (a fresh sign-in, or a step-up at STEP_UP_PATH). API keys and the system are machines that
    cannot step up; the route decides whether they may act at all. The answer follows RFC 9470's
    challenge (error=insufficient_user_authentication, max_age) in a 403, so that a browser
    does not take it for an ended session."""
    if principal.kind != "user":
        return
    if principal.auth_time is not None and time.time() - principal.auth_time <= max_age:
        return
    raise Problem(
        403, f"Confirm it is you before {action}: sign in again or step up with your password or second factor.",
        type="step-up-required", title="Recent authentication required",
        headers={"WWW-Authenticate": f'Bearer error="insufficient_user_authentication", max_age={max_age}'},
        extra={"step_up": {"endpoint": STEP_UP_PATH, "max_age": max_age}})


def hash_secret(secret: str) -> str:
    """API keys carry 256 bits of entropy, so a fast hash is safe; argon2 is for passwords."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_api_key(key: str) -> tuple[str, str]:
    body = key[len(API_KEY_PREFIX) :]
    key_id, _, secret = body.partition("_")
    if not key_id or not secret:
        raise unauthenticated("The API key is malformed.")
    return key_id, hash_secret(secret)


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
