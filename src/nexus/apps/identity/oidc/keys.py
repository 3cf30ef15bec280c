"""Signing keys: RS256, installation-wide, private halves sealed with the kernel's SecretBox.

One key signs at a time. Rotation makes a new key the signer and retires the old one: it
stays in the JWKS (and verifies) until every token it signed has expired. Each process
caches the key set briefly; a token naming an unknown kid makes it reload at once (another
process may just have rotated).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from nexus.kernel.crypto import SecretBox
from nexus.kernel.db import Database
from nexus.kernel.jsonutil import loads, utcnow

ALG = "RS256"
ID_TOKEN_TTL = 3600
KEY_MAX_AGE = timedelta(days=90)  # an older signing key is rotated on the next use
_RELOAD_SECONDS = 60.0
_MIN_RELOAD_GAP = 1.0


class KeyStore:
    def __init__(self, db: Database, secret_key: str, access_ttl: int) -> None:
        self.db = db
        self.box = SecretBox(secret_key, "oidc-signing-keys")
        # A retired key verifies as long as the longest-lived token it may have signed.
        self.grace = timedelta(seconds=max(access_ttl, ID_TOKEN_TTL) + 300)
        self._signer: tuple[str, RSAKey] | None = None
        self._public: dict[str, RSAKey] = {}
        self._jwks: dict[str, Any] = {"keys": []}
        self._loaded = 0.0
        self._lock = asyncio.Lock()

    async def _load(self) -> None:
        async with self.db.reader() as conn:
            rows = await conn.fetch(
                "SELECT id, private_sealed, public_jwk, created_at, retired_at, expires_at FROM identity_oidc_key"
                " ORDER BY created_at")
        now = utcnow()
        public: dict[str, RSAKey] = {}
        signer: tuple[str, RSAKey] | None = None
        for kid, sealed, pub, created, retired, expires in rows:
            exp = self.db.read_ts(expires)
            if exp is not None and exp <= now:
                continue
            jwk = pub if isinstance(pub, dict) else loads(pub)
            public[kid] = RSAKey.import_key(jwk)
            created_at = self.db.read_ts(created)
            if retired is None and created_at is not None and now - created_at < KEY_MAX_AGE:
                signer = (kid, RSAKey.import_key(loads(self.box.open(sealed))))
        self._public = public
        self._signer = signer
        self._jwks = {"keys": [{**k.as_dict(private=False), "kid": kid, "use": "sig", "alg": ALG}
                               for kid, k in public.items()]}
        self._loaded = time.monotonic()

    async def _fresh(self, force: bool = False) -> None:
        age = time.monotonic() - self._loaded
        if age < _RELOAD_SECONDS and not force:
            return
        if force and age < _MIN_RELOAD_GAP:
            return  # a flood of unknown kids must not turn into a flood of queries
        async with self._lock:
            await self._load()

    async def reload(self) -> None:
        """Read the keys again now (each process does so by itself within a minute)."""
        async with self._lock:
            await self._load()

    async def signer(self) -> tuple[str, RSAKey]:
        await self._fresh()
        if self._signer is None:
            await self.rotate(reason="first use" if not self._public else "expired")
        assert self._signer is not None
        return self._signer

    async def jwks(self) -> dict[str, Any]:
        await self._fresh()
        if self._signer is None:
            await self.signer()
        return self._jwks

    async def rotate(self, reason: str = "rotated") -> str:
        """Make a new key the signer; the previous one verifies until its tokens expired."""
        async with self._lock:
            key = RSAKey.generate_key(2048, private=True)
            kid = key.thumbprint()
            now = utcnow()
            async with self.db.transaction() as conn:
                await conn.execute(
                    "UPDATE identity_oidc_key SET retired_at = ?, expires_at = ? WHERE retired_at IS NULL",
                    [self.db.ts(now), self.db.ts(now + self.grace)])
                await conn.execute(
                    "INSERT INTO identity_oidc_key (id, alg, private_sealed, public_jwk, created_at) VALUES (?,?,?,?,?)",
                    [kid, ALG, self.box.seal(_json(key.as_dict(private=True))),
                     self.db.json(key.as_dict(private=False)), self.db.ts(now)])
            await self._load()
        return kid

    async def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        kid, key = await self.signer()
        return jwt.encode({"alg": ALG, "kid": kid, "typ": typ}, claims, key, algorithms=[ALG])

    async def verify(self, token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(header, claims) of a token signed by one of our keys, or None. Claims are not
        checked here (exp, iss, aud are the caller's)."""
        try:
            header = _header(token)
        except (ValueError, JoseError):
            return None
        kid = header.get("kid")
        if header.get("alg") != ALG or not isinstance(kid, str):
            return None  # alg=none, HS256 with our public key as secret, …: refused outright
        await self._fresh()
        if kid not in self._public:
            await self._fresh(force=True)
        key = self._public.get(kid)
        if key is None:
            return None
        try:
            tok = jwt.decode(token, key, algorithms=[ALG])
        except (JoseError, ValueError):
            return None
        return dict(tok.header), dict(tok.claims)


def _header(token: str) -> dict[str, Any]:
    import base64

    head = token.split(".", 1)[0]
    raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    out = loads(raw)
    if not isinstance(out, dict):
        raise ValueError("not a JOSE header")
    return out


def _json(value: Any) -> str:
    from nexus.kernel.jsonutil import dumps

    return dumps(value).decode()
