"""The OAuth 2.1 / OpenID Connect use cases: codes, grants, tokens, consent, revocation.

Token format (ADR 0006): access tokens are JWTs (RFC 9068, `typ: at+jwt`, RS256) naming a
*grant* — the family of everything issued from one authorization code or one
client-credentials request. A token is accepted only while its grant is live, so revoking
the grant (code replay, refresh-token reuse, revocation, logout, client deletion) stops
every token of the family at once. Refresh tokens and codes are opaque, stored hashed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core.util import create_half_hash

from nexus.kernel.auth import hash_secret
from nexus.kernel.context import Context, Principal, request_id_var
from nexus.kernel.db import Database
from nexus.kernel.errors import Problem, unauthenticated
from nexus.kernel.ids import new_id
from nexus.kernel.jsonutil import dumps, loads, utcnow
from nexus.kernel.records import UnitOfWork

from ..service import _holds, _invalidate, permissions_of
from .clients import API_SCOPE, OIDC_SCOPES, valid_scope
from .keys import ALG, ID_TOKEN_TTL, KeyStore

CODE_TTL = 60  # seconds; RFC 9700 recommends short-lived, single-use codes
REFRESH_PREFIX = "nxor_"
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 §4.1
CLIENT_COLUMNS = ("id, org_id, name, client_id, client_type, secret_hash, redirect_uris, post_logout_redirect_uris,"
                  " grant_types, scopes, first_party, service_user_id")


# The web app's own client, built in and present in every org (see webapp.py).
WEB_CLIENT_ID = "nexus-web"


def oauth_error(error: str, detail: str, status: int = 400, headers: dict[str, str] | None = None) -> Problem:
    """An RFC 6749 error that is also an RFC 9457 problem: clients read `error`, people `detail`."""
    return Problem(status, detail, type=f"oauth-{error.replace('_', '-')}", title="OAuth request refused",
                   headers=headers, extra={"error": error, "error_description": detail})


def _j(value: Any) -> Any:
    return loads(value) if isinstance(value, (str, bytes)) else value


@dataclass(frozen=True)
class Client:
    record_id: str
    org_id: str
    name: str
    client_id: str
    client_type: str
    secret_hash: str | None
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    scopes: list[str]
    first_party: bool
    service_user_id: str | None

    @property
    def public(self) -> bool:
        return self.client_type == "public"


@dataclass(frozen=True)
class SpentCode:
    code_id: str
    org_id: str
    user_id: str
    session_id: str | None
    scope: str
    nonce: str | None
    auth_time: Any
    issuer: str


def parse_scope(raw: str | None) -> list[str]:
    return list(dict.fromkeys((raw or "").split()))


def scoped_permissions(user: Principal, scopes: list[str]) -> frozenset[str]:
    """What a token may do: the user's permissions, narrowed to the permission scopes
    (`api` keeps them all; openid/profile/email alone grant no API access)."""
    if API_SCOPE in scopes:
        return user.permissions
    return frozenset(s for s in scopes if s not in OIDC_SCOPES and _holds(user, s))


class Provider:
    def __init__(self, nx: Any) -> None:
        self.nx = nx
        self.db: Database = nx.db
        settings = nx.settings
        self.keys = KeyStore(nx.db, settings.secret_key, settings.access_token_ttl)
        self.public_url: str | None = getattr(settings, "public_url", None)
        self.access_ttl: int = settings.access_token_ttl
        self.refresh_ttl: int = settings.refresh_token_ttl
        self._mac_key = hashlib.sha256(b"nexus-oidc-request\x00" + settings.secret_key.encode()).digest()

    # -- clients ---------------------------------------------------------------------
    async def client(self, client_id: str | None) -> Client | None:
        if not client_id or len(client_id) > 64:
            return None
        async with self.db.reader() as conn:
            row = await conn.fetchrow(f"SELECT {CLIENT_COLUMNS} FROM identity_oauth_client"
                                      " WHERE client_id = ? AND deleted_at IS NULL", [client_id])
        if row is None:
            return None
        return Client(row[0], row[1], row[2], row[3], row[4], row[5], list(_j(row[6]) or []),
                      list(_j(row[7]) or []), list(_j(row[8]) or []), list(_j(row[9]) or []), bool(row[10]), row[11])

    async def authenticate_client(self, client_id: str | None, secret: str | None, addr: str | None) -> Client:
        """client_secret_basic / client_secret_post for confidential clients; a public client
        names itself only (its proof is PKCE)."""
        client = await self.client(client_id)
        if client is None:
            raise _invalid_client("Unknown client.")
        if client.public:
            if secret:
                await self.audit(client, "oauth_refused", {"reason": "public client sent a secret"}, addr)
                raise _invalid_client("A public client has no secret.")
            return client
        if not secret or not client.secret_hash or not hmac.compare_digest(hash_secret(secret), client.secret_hash):
            await self.audit(client, "oauth_refused", {"reason": "client authentication failed"}, addr)
            raise _invalid_client("Client authentication failed.")
        return client

    # -- audit -----------------------------------------------------------------------
    async def audit(self, client: Client, action: str, data: dict[str, Any], addr: str | None,
                    user_id: str | None = None) -> None:
        if not client.org_id:
            return  # the built-in web client before anyone is known: no org, no trail to write to
        async with UnitOfWork(self.db, self._ctx(client.org_id, user_id, addr)) as uow:
            uow.audit("identity", "oauth-clients", client.record_id, action, None, {"client_id": client.client_id,
                                                                                 **data})

    def _ctx(self, org_id: str, user_id: str | None, addr: str | None) -> Context:
        p = Principal(user_id=user_id or "system", org_id=org_id, kind="user" if user_id else "system")
        return Context(p, request_id_var.get(), addr)

    # -- issuer ----------------------------------------------------------------------
    def issuer_for(self, scheme: str, host: str) -> str:
        return self.public_url or f"{scheme}://{host}"

    # -- signed authorization requests (the consent form carries one) ---------------
    def seal_request(self, params: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(dumps({**params, "exp": int(time.time()) + 600})).decode().rstrip("=")
        mac = hmac.new(self._mac_key, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def open_request(self, sealed: str) -> dict[str, Any] | None:
        body, _, mac = sealed.rpartition(".")
        want = hmac.new(self._mac_key, body.encode(), hashlib.sha256).hexdigest()
        if not body or not hmac.compare_digest(mac, want):
            return None
        try:
            params = loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        if not isinstance(params, dict) or int(params.get("exp", 0)) < time.time():
            return None
        return params

    # -- consent ---------------------------------------------------------------------
    async def consented(self, org_id: str, user_id: str, client_id: str, scopes: list[str]) -> bool:
        async with self.db.reader() as conn:
            raw = await conn.fetchval("SELECT scopes FROM identity_oauth_consent WHERE org_id = ? AND user_id = ?"
                                      " AND client_id = ?", [org_id, user_id, client_id])
        return raw is not None and set(scopes) <= set(_j(raw))

    # -- authorization codes ---------------------------------------------------------
    async def issue_code(self, client: Client, user: Principal, *, redirect_uri: str, scopes: list[str],
                         nonce: str | None, challenge: str | None, issuer: str, addr: str | None,
                         consent: bool) -> str:
        code = secrets.token_urlsafe(32)
        async with UnitOfWork(self.db, Context(user, request_id_var.get(), addr)) as uow:
            now = uow.now
            auth_time = now
            if user.session_id:
                started = await uow.conn.fetchval("SELECT created_at FROM identity_session WHERE id = ?",
                                                  [user.session_id])
                auth_time = self.db.read_ts(started) or now
            if consent:
                old = await uow.conn.fetchval("SELECT scopes FROM identity_oauth_consent WHERE org_id = ? AND"
                                              " user_id = ? AND client_id = ?",
                                              [user.org_id, user.user_id, client.client_id])
                merged = list(dict.fromkeys([*(_j(old) if old is not None else []), *scopes]))
                await uow.conn.execute("DELETE FROM identity_oauth_consent WHERE org_id = ? AND user_id = ?"
                                       " AND client_id = ?", [user.org_id, user.user_id, client.client_id])
                await uow.conn.execute(
                    "INSERT INTO identity_oauth_consent (org_id, user_id, client_id, scopes, created_at)"
                    " VALUES (?,?,?,?,?)",
                    [user.org_id, user.user_id, client.client_id, self.db.json(merged), self.db.ts(now)])
                uow.audit("identity", "oauth-clients", client.record_id, "oauth_consent_given", None,
                          {"client_id": client.client_id, "scopes": scopes})
            await uow.conn.execute(
                "INSERT INTO identity_oauth_code (id, org_id, client_id, user_id, session_id, redirect_uri, scope,"
                " nonce, code_challenge, auth_time, issuer, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [hash_secret(code), user.org_id, client.client_id, user.user_id, user.session_id, redirect_uri,
                 " ".join(scopes), nonce, challenge, self.db.ts(auth_time), issuer, self.db.ts(now),
                 self.db.ts(now + timedelta(seconds=CODE_TTL))])
            uow.audit("identity", "oauth-clients", client.record_id, "oauth_code_issued", None,
                      {"client_id": client.client_id, "scopes": scopes})
        return code

    async def exchange_code(self, client: Client, code: str, redirect_uri: str | None, verifier: str | None,
                            addr: str | None) -> dict[str, Any]:
        if "authorization_code" not in client.grant_types:
            await self.audit(client, "oauth_refused", {"reason": "grant not allowed", "grant": "authorization_code"},
                             addr)
            raise oauth_error("unauthorized_client", "This client may not use the authorization_code grant.")
        await self.keys.signer()  # make sure a key exists before the transaction (first use creates it)
        spent = await self.spend_code(client, code, redirect_uri, verifier, addr)
        code_id, org_id, user_id, session_id = spent.code_id, spent.org_id, spent.user_id, spent.session_id
        scope, nonce, auth_time, issuer = spent.scope, spent.nonce, spent.auth_time, spent.issuer
        scopes = parse_scope(scope)
        async with UnitOfWork(self.db, self._ctx(org_id, user_id, addr)) as uow:
            user = await self._user_claims(uow.conn, org_id, user_id)
            if user is None:
                raise oauth_error("invalid_grant", "The account is not active.")
            new_grant = await self._new_grant(uow, client, user_id, scopes, session_id, self.db.read_ts(auth_time),
                                              issuer, self.refresh_ttl)
            await uow.conn.execute("UPDATE identity_oauth_code SET grant_id = ? WHERE id = ?", [new_grant, code_id])
            out = await self._tokens(uow, client, new_grant, user, scopes, issuer, nonce=nonce,
                                     auth_time=self.db.read_ts(auth_time), session_id=session_id,
                                     refresh="refresh_token" in client.grant_types)
            uow.audit("identity", "oauth-clients", client.record_id, "oauth_token_issued", None,
                      {"client_id": client.client_id, "grant": "authorization_code", "grant_id": new_grant,
                       "scopes": scopes})
        return out

    async def spend_code(self, client: Client, code: str, redirect_uri: str | None, verifier: str | None,
                         addr: str | None) -> SpentCode:
        """Use an authorization code once: every check (client, expiry, redirect URI, PKCE) runs
        after the code is marked used, so that a failed attempt cannot be retried."""
        code_id = hash_secret(code)
        now = utcnow()
        async with self.db.reader() as conn:
            row = await conn.fetchrow(
                "SELECT org_id, client_id, user_id, session_id, redirect_uri, scope, nonce, code_challenge, auth_time,"
                " issuer, expires_at, used_at, grant_id FROM identity_oauth_code WHERE id = ?", [code_id])
        if row is None:
            await self.audit(client, "oauth_refused", {"reason": "unknown authorization code"}, addr)
            raise oauth_error("invalid_grant", "The authorization code is invalid.")
        (org_id, code_client, user_id, session_id, code_redirect, scope, nonce, challenge, auth_time, issuer,
         expires_at, used_at, _grant_id) = row
        if code_client != client.client_id or org_id != client.org_id:
            await self.audit(client, "oauth_refused", {"reason": "code issued to another client"}, addr)
            raise oauth_error("invalid_grant", "The authorization code is invalid.")
        async with UnitOfWork(self.db, self._ctx(org_id, user_id, addr)) as uow:
            # Spent first, checked second: a code is used once even when the checks fail,
            # so that a wrong PKCE verifier cannot be retried.
            n = 0 if used_at is not None else await uow.conn.execute(
                "UPDATE identity_oauth_code SET used_at = ? WHERE id = ? AND used_at IS NULL",
                [self.db.ts(now), code_id])
        if n != 1:
            await self._code_replayed(client, code_id, org_id, user_id, addr)
        reason = None
        exp = self.db.read_ts(expires_at)
        if exp is None or exp < now:
            reason = "The authorization code has expired."
        elif redirect_uri != code_redirect:
            reason = "redirect_uri does not match the authorization request."
        elif challenge:
            if not verifier or not _VERIFIER.match(verifier):
                reason = "code_verifier is missing or malformed."
            elif not hmac.compare_digest(create_s256_code_challenge(verifier), challenge):
                reason = "code_verifier does not match the code challenge."
        elif verifier:
            reason = "code_verifier was sent but the authorization request had no code_challenge."
        if reason:
            await self.audit(client, "oauth_refused", {"reason": reason}, addr, user_id)
            raise oauth_error("invalid_grant", reason)
        return SpentCode(code_id, org_id, user_id, session_id, scope, nonce, auth_time, issuer)

    async def code_org(self, code: str) -> str | None:
        """The org an authorization code was issued in (the built-in web client exists in every org)."""
        async with self.db.reader() as conn:
            org: str | None = await conn.fetchval("SELECT org_id FROM identity_oauth_code WHERE id = ?",
                                                  [hash_secret(code)])
        return org

    async def _code_replayed(self, client: Client, code_id: str, org_id: str, user_id: str,
                             addr: str | None) -> None:
        """A code presented twice was intercepted: revoke what the first exchange issued."""
        async with UnitOfWork(self.db, self._ctx(org_id, user_id, addr)) as uow:
            grant_id, session_id = await uow.conn.fetchrow(
                "SELECT grant_id, session_id FROM identity_oauth_code WHERE id = ?", [code_id])
            if grant_id:
                await self._revoke_grant(uow, grant_id, "code_replayed")
            if client.client_id == WEB_CLIENT_ID and session_id:
                # The web app's session came from this code: the sign-in it belongs to ends.
                await uow.conn.execute("UPDATE identity_session SET revoked_at = ?, revoked_reason = 'code_replayed'"
                                       " WHERE id = ? AND revoked_at IS NULL", [self.db.ts(uow.now), session_id])
            uow.audit("identity", "oauth-clients", client.record_id, "authorization_code_replayed", None,
                      {"client_id": client.client_id, "grant_id": grant_id})
        _invalidate()
        raise oauth_error("invalid_grant", "The authorization code was already used; its tokens are revoked.")

    # -- refresh tokens --------------------------------------------------------------
    async def refresh(self, client: Client, token: str, scope: str | None, addr: str | None) -> dict[str, Any]:
        if "refresh_token" not in client.grant_types:
            raise oauth_error("unauthorized_client", "This client may not use the refresh_token grant.")
        await self.keys.signer()
        token_id, secret = _split_refresh(token)
        async with self.db.reader() as conn:
            row = await conn.fetchrow(
                "SELECT r.secret_hash, r.used_at, g.id, g.org_id, g.client_id, g.user_id, g.session_id, g.scope,"
                " g.issuer, g.auth_time, g.expires_at, g.revoked_at, s.revoked_at"
                " FROM identity_oauth_refresh r JOIN identity_oauth_grant g ON g.id = r.grant_id"
                " LEFT JOIN identity_session s ON s.id = g.session_id WHERE r.id = ?", [token_id])
        if row is None or not hmac.compare_digest(row[0], hash_secret(secret)):
            await self.audit(client, "oauth_refused", {"reason": "unknown refresh token"}, addr)
            raise oauth_error("invalid_grant", "The refresh token is invalid.")
        (_h, used_at, grant_id, org_id, grant_client, user_id, session_id, grant_scope, issuer, auth_time,
         expires_at, revoked_at, session_revoked) = row
        if grant_client != client.client_id:
            await self.audit(client, "oauth_refused", {"reason": "refresh token of another client"}, addr)
            raise oauth_error("invalid_grant", "The refresh token is invalid.")
        now = utcnow()
        if used_at is not None:
            await self._refresh_reused(client, grant_id, org_id, user_id, token_id, addr)
        scopes = parse_scope(grant_scope)
        exp = self.db.read_ts(expires_at)
        if revoked_at is not None or exp is None or exp < now:
            await self.audit(client, "oauth_refused", {"reason": "grant revoked or expired", "grant_id": grant_id},
                             addr, user_id)
            raise oauth_error("invalid_grant", "The grant has ended; sign in again.")
        if session_id and session_revoked is not None and "offline_access" not in scopes:
            # Without offline_access a token lives no longer than the sign-in it came from.
            await self.audit(client, "oauth_refused", {"reason": "session ended", "grant_id": grant_id}, addr,
                             user_id)
            raise oauth_error("invalid_grant", "The session has ended; sign in again.")
        asked = parse_scope(scope) if scope else scopes
        if not set(asked) <= set(scopes):
            raise oauth_error("invalid_scope", "A refresh cannot add scopes to the grant.")
        asked = [s for s in asked if s in client.scopes]  # scopes the admin took away since are gone
        async with UnitOfWork(self.db, self._ctx(org_id, user_id, addr)) as uow:
            n = await uow.conn.execute("UPDATE identity_oauth_refresh SET used_at = ? WHERE id = ? AND used_at IS NULL",
                                       [self.db.ts(now), token_id])
            if n == 1:
                user = await self._user_claims(uow.conn, org_id, user_id)
                if user is None:
                    raise oauth_error("invalid_grant", "The account is not active.")
                out = await self._tokens(uow, client, grant_id, user, asked, issuer, nonce=None,
                                         auth_time=self.db.read_ts(auth_time), session_id=session_id, refresh=True)
                uow.audit("identity", "oauth-clients", client.record_id, "oauth_token_issued", None,
                          {"client_id": client.client_id, "grant": "refresh_token", "grant_id": grant_id})
        if n != 1:
            await self._refresh_reused(client, grant_id, org_id, user_id, token_id, addr)
        return out

    async def _refresh_reused(self, client: Client, grant_id: str, org_id: str, user_id: str, token_id: str,
                              addr: str | None) -> None:
        """A rotated refresh token came back: it leaked. The whole family is revoked (RFC 9700 §4.14.2)."""
        async with UnitOfWork(self.db, self._ctx(org_id, user_id, addr)) as uow:
            await self._revoke_grant(uow, grant_id, "refresh_token_reuse")
            uow.audit("identity", "oauth-clients", client.record_id, "refresh_token_reused", None,
                      {"client_id": client.client_id, "grant_id": grant_id, "token_id": token_id})
        _invalidate()
        raise oauth_error("invalid_grant", "The refresh token was already used; every token of this grant is revoked.")

    # -- client credentials ----------------------------------------------------------
    async def client_credentials(self, client: Client, scope: str | None, issuer: str,
                                 addr: str | None) -> dict[str, Any]:
        if client.public or "client_credentials" not in client.grant_types or not client.service_user_id:
            await self.audit(client, "oauth_refused", {"reason": "grant not allowed", "grant": "client_credentials"},
                             addr)
            raise oauth_error("unauthorized_client", "This client may not use the client_credentials grant.")
        allowed = [s for s in client.scopes if s not in OIDC_SCOPES]
        scopes = parse_scope(scope) if scope else allowed
        bad = [s for s in scopes if s not in allowed]
        if bad or not scopes:
            await self.audit(client, "oauth_refused", {"reason": "invalid scope", "scopes": bad}, addr)
            raise oauth_error("invalid_scope", f"Scopes not allowed for this client: {' '.join(bad) or '(none)'}.")
        await self.keys.signer()
        async with UnitOfWork(self.db, self._ctx(client.org_id, client.service_user_id, addr)) as uow:
            user = await self._user_claims(uow.conn, client.org_id, client.service_user_id)
            if user is None:
                raise oauth_error("invalid_client", "The client's service account is not active.", 401)
            grant_id = await self._new_grant(uow, client, client.service_user_id, scopes, None, None,
                                             issuer, self.access_ttl)
            out = await self._tokens(uow, client, grant_id, user, scopes, issuer, nonce=None, auth_time=None,
                                     session_id=None, refresh=False)
            uow.audit("identity", "oauth-clients", client.record_id, "oauth_token_issued", None,
                      {"client_id": client.client_id, "grant": "client_credentials", "grant_id": grant_id,
                       "scopes": scopes})
        return out

    # -- grants and tokens -------------------------------------------------------------
    async def _new_grant(self, uow: UnitOfWork, client: Client, user_id: str, scopes: list[str],
                         session_id: str | None, auth_time: Any, issuer: str, ttl: int) -> str:
        grant_id = new_id()
        await uow.conn.execute(
            "INSERT INTO identity_oauth_grant (id, org_id, client_id, user_id, session_id, scope, issuer, auth_time,"
            " created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [grant_id, client.org_id, client.client_id, user_id, session_id, " ".join(scopes), issuer,
             self.db.ts(auth_time) if auth_time else None, self.db.ts(uow.now),
             self.db.ts(uow.now + timedelta(seconds=ttl))])
        return grant_id

    async def _revoke_grant(self, uow: UnitOfWork, grant_id: str, reason: str) -> None:
        await uow.conn.execute("UPDATE identity_oauth_grant SET revoked_at = ?, revoked_reason = ?"
                               " WHERE id = ? AND revoked_at IS NULL", [self.db.ts(uow.now), reason, grant_id])
        uow.after_commit.append(_invalidate)

    async def _user_claims(self, conn: Any, org_id: str, user_id: str) -> dict[str, Any] | None:
        row = await conn.fetchrow(
            "SELECT u.email, u.name, u.status, o.slug FROM identity_user u JOIN identity_org o ON o.id = u.org_id"
            " WHERE u.id = ? AND u.org_id = ? AND u.deleted_at IS NULL", [user_id, org_id])
        if row is None or row[2] != "active":
            return None
        _perms, roles = await permissions_of(conn, org_id, user_id)
        return {"id": user_id, "org_id": org_id, "email": row[0], "name": row[1], "org_slug": row[3],
                "roles": list(roles)}

    async def _tokens(self, uow: UnitOfWork, client: Client, grant_id: str, user: dict[str, Any], scopes: list[str],
                      issuer: str, *, nonce: str | None, auth_time: Any, session_id: str | None,
                      refresh: bool) -> dict[str, Any]:
        now = int(time.time())
        access_claims = {
            "iss": issuer, "sub": user["id"], "aud": api_audience(issuer), "exp": now + self.access_ttl, "iat": now,
            "jti": new_id(), "client_id": client.client_id, "scope": " ".join(scopes), "org": user["org_id"],
            "gid": grant_id,
        }
        access = await self.keys.sign(access_claims, typ="at+jwt")
        out: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.access_ttl,
                               "scope": " ".join(scopes)}
        if refresh:
            token_id = new_id()
            secret = secrets.token_urlsafe(32)
            await uow.conn.execute(
                "INSERT INTO identity_oauth_refresh (id, grant_id, secret_hash, created_at) VALUES (?,?,?,?)",
                [token_id, grant_id, hash_secret(secret), self.db.ts(uow.now)])
            out["refresh_token"] = f"{REFRESH_PREFIX}{token_id}_{secret}"
        if "openid" in scopes:
            claims: dict[str, Any] = {
                "iss": issuer, "sub": user["id"], "aud": client.client_id, "azp": client.client_id,
                "exp": now + ID_TOKEN_TTL, "iat": now, "org": user["org_id"], "org_slug": user["org_slug"],
                "roles": user["roles"], "at_hash": create_half_hash(access, ALG).decode(),
            }
            if auth_time is not None:
                claims["auth_time"] = int(auth_time.timestamp())
            if nonce:
                claims["nonce"] = nonce
            if session_id:
                claims["sid"] = session_id
            claims.update(profile_claims(user, scopes))
            out["id_token"] = await self.keys.sign(claims)
        return out

    # -- validating access tokens (the kernel calls this for every new at+jwt) ----------
    async def check_access_token(self, token: str, *, allow_expired: bool = False) -> tuple[dict[str, Any], Any]:
        """(claims, grant row) of a live access token; Problem 401 otherwise."""
        verified = await self.keys.verify(token)
        if verified is None:
            raise unauthenticated("The access token is invalid.")
        header, claims = verified
        if header.get("typ") != "at+jwt":
            raise unauthenticated("The access token is invalid.")  # an ID token is not an access token
        exp, iat, iss, gid = claims.get("exp"), claims.get("iat"), claims.get("iss"), claims.get("gid")
        if not isinstance(exp, int) or not isinstance(iat, int) or not isinstance(iss, str) or not isinstance(gid, str):
            raise unauthenticated("The access token is invalid.")
        if exp <= time.time() and not allow_expired:
            raise unauthenticated("The access token has expired.")
        if self.public_url and iss != self.public_url:
            raise unauthenticated("The access token was issued by someone else.")
        aud = claims.get("aud")
        if (aud if isinstance(aud, list) else [aud]) != [api_audience(iss)]:
            raise unauthenticated("The access token is not meant for this API.")
        async with self.db.reader() as conn:
            row = await conn.fetchrow(
                "SELECT g.org_id, g.user_id, g.client_id, g.scope, g.issuer, g.revoked_at, u.email, u.name, u.status,"
                " u.deleted_at, c.id, c.deleted_at, c.scopes FROM identity_oauth_grant g"
                " JOIN identity_user u ON u.id = g.user_id"
                " LEFT JOIN identity_oauth_client c ON c.client_id = g.client_id WHERE g.id = ?", [gid])
        if (row is None or row[4] != iss or row[1] != claims.get("sub") or row[0] != claims.get("org")
                or row[2] != claims.get("client_id")):
            raise unauthenticated("The access token is invalid.")
        if row[5] is not None or row[8] != "active" or row[9] is not None or row[10] is None or row[11] is not None:
            raise unauthenticated("The access token has been revoked.")
        return claims, row

    async def principal_for_token(self, db: Database, token: str) -> tuple[Principal, float]:
        claims, row = await self.check_access_token(token)
        org_id, user_id = row[0], row[1]
        async with db.reader() as conn:
            perms, roles = await permissions_of(conn, org_id, user_id)
        user = Principal(user_id=user_id, org_id=org_id, kind="user", permissions=perms)
        granted = scoped_permissions(user, token_scopes(claims, row[3], row[12]))
        return Principal(user_id=user_id, org_id=org_id, kind="oauth", permissions=granted, email=row[6],
                         name=row[7], roles=roles), float(claims["exp"])

    async def userinfo(self, token: str) -> dict[str, Any]:
        claims, row = await self.check_access_token(token)
        scopes = token_scopes(claims, row[3], row[12])
        if "openid" not in scopes:
            raise Problem(403, "The access token lacks the openid scope.", type="insufficient-scope",
                          extra={"error": "insufficient_scope"},
                          headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="openid"'})
        async with self.db.reader() as conn:
            user = await self._user_claims(conn, row[0], row[1])
        if user is None:
            raise unauthenticated("The account is not active.")
        return {"sub": row[1], "org": user["org_id"], "org_slug": user["org_slug"], "roles": user["roles"],
                **profile_claims(user, scopes)}

    # -- introspection and revocation --------------------------------------------------
    async def introspect(self, client: Client, token: str) -> dict[str, Any]:
        inactive = {"active": False}
        if token.startswith(REFRESH_PREFIX):
            try:
                token_id, secret = _split_refresh(token)
            except Problem:
                return inactive
            async with self.db.reader() as conn:
                row = await conn.fetchrow(
                    "SELECT r.secret_hash, r.used_at, g.org_id, g.client_id, g.user_id, g.scope, g.expires_at,"
                    " g.revoked_at, g.issuer, r.created_at FROM identity_oauth_refresh r"
                    " JOIN identity_oauth_grant g ON g.id = r.grant_id WHERE r.id = ?", [token_id])
            if row is None or not hmac.compare_digest(row[0], hash_secret(secret)) or row[1] is not None:
                return inactive
            exp = self.db.read_ts(row[6])
            if row[2] != client.org_id or row[7] is not None or exp is None or exp < utcnow():
                return inactive
            created = self.db.read_ts(row[9])
            return {"active": True, "token_type": "refresh_token", "client_id": row[3], "sub": row[4],
                    "scope": row[5], "exp": int(exp.timestamp()), "iat": int(created.timestamp()) if created else None,
                    "iss": row[8]}
        try:
            claims, grant = await self.check_access_token(token)
        except Problem:
            return inactive
        if grant[0] != client.org_id:
            return inactive  # another org's token is none of this client's business
        return {"active": True, "token_type": "access_token", "client_id": claims["client_id"], "sub": claims["sub"],
                "scope": claims.get("scope", ""), "exp": claims["exp"], "iat": claims["iat"], "iss": claims["iss"],
                "aud": claims["aud"], "jti": claims.get("jti"), "username": grant[6], "org": grant[0]}

    async def revoke(self, client: Client, token: str, addr: str | None) -> None:
        """RFC 7009: revoking any token of a grant revokes the grant (every token of the family)."""
        grant_id = None
        if token.startswith(REFRESH_PREFIX):
            try:
                token_id, secret = _split_refresh(token)
            except Problem:
                return
            async with self.db.reader() as conn:
                row = await conn.fetchrow("SELECT r.secret_hash, g.id, g.client_id FROM identity_oauth_refresh r"
                                          " JOIN identity_oauth_grant g ON g.id = r.grant_id WHERE r.id = ?", [token_id])
            if row is not None and hmac.compare_digest(row[0], hash_secret(secret)) and row[2] == client.client_id:
                grant_id = row[1]
        else:
            verified = await self.keys.verify(token)
            if verified is not None and verified[1].get("client_id") == client.client_id:
                gid = verified[1].get("gid")
                grant_id = gid if isinstance(gid, str) else None
        if grant_id is None:
            return  # unknown, foreign or malformed tokens are answered 200 all the same
        async with UnitOfWork(self.db, self._ctx(client.org_id, None, addr)) as uow:
            await self._revoke_grant(uow, grant_id, "revoked")
            uow.audit("identity", "oauth-clients", client.record_id, "oauth_token_revoked", None,
                      {"client_id": client.client_id, "grant_id": grant_id})

    # -- RP-initiated logout -----------------------------------------------------------
    async def id_token_hint(self, hint: str) -> dict[str, Any] | None:
        """The claims of an ID token we issued (expired ones too, as OIDC RP-Initiated Logout allows)."""
        verified = await self.keys.verify(hint)
        if verified is None or verified[0].get("typ") == "at+jwt":
            return None
        claims = verified[1]
        if self.public_url and claims.get("iss") != self.public_url:
            return None
        return claims

    async def end_session(self, client: Client, user_id: str, org_id: str, session_id: str | None,
                          addr: str | None) -> None:
        async with UnitOfWork(self.db, self._ctx(org_id, user_id, addr)) as uow:
            if session_id:
                await uow.conn.execute(
                    "UPDATE identity_session SET revoked_at = ?, revoked_reason = 'rp_logout' WHERE id = ?"
                    " AND user_id = ? AND org_id = ? AND revoked_at IS NULL",
                    [self.db.ts(uow.now), session_id, user_id, org_id])
                await uow.conn.execute(
                    "UPDATE identity_oauth_grant SET revoked_at = ?, revoked_reason = 'rp_logout' WHERE session_id = ?"
                    " AND org_id = ? AND revoked_at IS NULL", [self.db.ts(uow.now), session_id, org_id])
            uow.audit("identity", "oauth-clients", client.record_id, "oauth_logout", None,
                      {"client_id": client.client_id, "session_id": session_id})
            uow.after_commit.append(_invalidate)


PURGE_AFTER = timedelta(days=1)


async def purge_expired(db: Database, keep: timedelta = PURGE_AFTER) -> dict[str, int]:
    """Delete what can never be used again: codes, grants (with their refresh tokens) and
    signing keys that expired or were revoked more than `keep` ago. Kept that long so that a
    late replay still finds its code and is recognised as one."""
    cutoff = db.ts(utcnow() - keep)
    async with db.transaction() as conn:
        codes = await conn.execute("DELETE FROM identity_oauth_code WHERE expires_at < ?", [cutoff])
        dead = ("SELECT id FROM identity_oauth_grant WHERE expires_at < ? OR revoked_at < ?")
        refresh = await conn.execute(f"DELETE FROM identity_oauth_refresh WHERE grant_id IN ({dead})",
                                     [cutoff, cutoff])
        grants = await conn.execute("DELETE FROM identity_oauth_grant WHERE expires_at < ? OR revoked_at < ?",
                                    [cutoff, cutoff])
        keys = await conn.execute("DELETE FROM identity_oidc_key WHERE expires_at < ?", [cutoff])
    return {"codes": codes, "refresh_tokens": refresh, "grants": grants, "keys": keys}


def token_scopes(claims: dict[str, Any], grant_scope: str, client_scopes: Any) -> list[str]:
    """A token's own scopes (a refresh may have narrowed them), never beyond its grant's nor
    beyond what its client may ask for now (an admin taking a scope away applies at once)."""
    granted = set(parse_scope(grant_scope)) & set(_j(client_scopes) or [])
    raw = claims.get("scope")
    return [s for s in parse_scope(raw if isinstance(raw, str) else "") if s in granted]


def api_audience(issuer: str) -> str:
    """The audience of access tokens for the NEXUS API (RFC 9068 §3: the resource)."""
    return issuer.rstrip("/") + "/api"


def profile_claims(user: dict[str, Any], scopes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "profile" in scopes:
        out["name"] = user["name"]
        out["preferred_username"] = user["email"]
    if "email" in scopes:
        out["email"] = user["email"]
        # NEXUS does not prove that a person controls the address (an admin typed it in).
        out["email_verified"] = False
    return out


def _split_refresh(token: str) -> tuple[str, str]:
    if not token.startswith(REFRESH_PREFIX) or len(token) > 200:
        raise oauth_error("invalid_grant", "The refresh token is invalid.")
    token_id, _, secret = token[len(REFRESH_PREFIX):].partition("_")
    if len(token_id) != 26 or not secret:
        raise oauth_error("invalid_grant", "The refresh token is invalid.")
    return token_id, secret


def _invalid_client(detail: str) -> Problem:
    return oauth_error("invalid_client", detail, 401, {"WWW-Authenticate": 'Basic realm="nexus"'})


def valid_scopes(scopes: list[str]) -> bool:
    return all(valid_scope(s) for s in scopes)
