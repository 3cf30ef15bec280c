"""Federation use cases shared by SAML and OIDC: protocol state, replay protection,
just-in-time provisioning with role mapping, and ending in a NEXUS session."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any

from nexus.kernel.context import system_context
from nexus.kernel.crypto import SecretBox
from nexus.kernel.db import Database, is_unique_violation
from nexus.kernel.errors import Problem
from nexus.kernel.jsonutil import dumps, loads, utcnow
from nexus.kernel.records import TableSpec, UnitOfWork

from .. import service as identity
from . import models
from .keys import KeyPair, generate_keypair

log = logging.getLogger("nexus.identity.federation")

IDP = TableSpec(models.IdentityProvider, hidden=("client_secret_sealed",))
IDP_ALL = TableSpec(models.IdentityProvider)
SP = TableSpec(models.ServiceProvider)
STATE_TTL = 600  # seconds a sign-in may take at the IdP
REPLAY_TTL = 24 * 3600  # longer than any assertion's validity window we accept


class FederationError(Problem):
    """A refused federated sign-in: 400 problem+json, audited by the caller with `reason`."""

    def __init__(self, detail: str, reason: str, status: int = 400) -> None:
        super().__init__(status, detail, type="federation-refused", title="Sign-in refused",
                         extra={"reason": reason})
        self.reason = reason


def secret_box(nx: Any) -> SecretBox:
    """The installation's box for secrets at rest (keyed by NEXUS_SECRET_KEY)."""
    box: SecretBox = nx.db.secret_box
    return box


# -- lookups -----------------------------------------------------------------------


async def org_id_for(db: Database, slug: str) -> str:
    if len(slug) > 64:
        raise Problem(404, "No such organisation.")
    async with db.reader() as conn:
        org_id = await conn.fetchval("SELECT id FROM identity_org WHERE slug = ?", [slug])
    if org_id is None:
        raise Problem(404, "No such organisation.")
    return str(org_id)


async def find_idp(db: Database, org_id: str, *, slug: str | None = None, protocol: str | None = None,
                   saml_entity_id: str | None = None) -> dict[str, Any] | None:
    """An enabled, live IdP connection of the org (with its sealed secret: server side only)."""
    where: dict[str, Any] = {"enabled": True}
    if slug is not None:
        if len(slug) > 64:
            return None
        where["slug"] = slug
    if protocol is not None:
        where["protocol"] = protocol
    if saml_entity_id is not None:
        where["saml_entity_id"] = saml_entity_id
    async with UnitOfWork(db, system_context(org_id)) as uow:
        rows = await uow.find(IDP_ALL, where)
    return rows[0] if rows else None


async def list_idps(db: Database, org_id: str) -> list[dict[str, Any]]:
    async with UnitOfWork(db, system_context(org_id)) as uow:
        return await uow.find(IDP, {"enabled": True}, order_by="name")


# -- the org's SAML key pair ----------------------------------------------------------


async def saml_keypair(nx: Any, org_id: str) -> KeyPair:
    """The org's SAML key pair, made on first use; every process reads the same one."""
    db: Database = nx.db
    box = secret_box(nx)
    async with db.reader() as conn:
        row = await conn.fetchrow("SELECT private_key_sealed, certificate FROM identity_fed_key WHERE org_id = ?",
                                  [org_id])
    if row is None:
        pair = generate_keypair(f"nexus-saml-{org_id}")
        try:
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO identity_fed_key (org_id, private_key_sealed, certificate, created_at)"
                    " VALUES (?,?,?,?)", [org_id, box.seal(pair.private_key_pem), pair.certificate_pem,
                                          db.ts(utcnow())])
            return pair
        except Exception as exc:
            if not is_unique_violation(exc):
                raise
        async with db.reader() as conn:  # another process made it a moment ago
            row = await conn.fetchrow(
                "SELECT private_key_sealed, certificate FROM identity_fed_key WHERE org_id = ?", [org_id])
        assert row is not None
    return KeyPair(box.open(row[0]), row[1])


# -- single-use protocol state ----------------------------------------------------------


async def put_state(db: Database, org_id: str, kind: str, data: dict[str, Any], key: str | None = None,
                    ttl: int = STATE_TTL) -> str:
    key = key or secrets.token_urlsafe(32)
    now = utcnow()
    async with db.transaction() as conn:
        # Expired rows go on every write: the table stays the size of the sign-ins in flight.
        await conn.execute("DELETE FROM identity_fed_state WHERE expires_at < ?", [db.ts(now)])
        await conn.execute(
            "INSERT INTO identity_fed_state (handle, org_id, kind, data, created_at, expires_at) VALUES (?,?,?,?,?,?)",
            [key, org_id, kind, dumps(data).decode(), db.ts(now), db.ts(now + timedelta(seconds=ttl))])
    return key


async def take_state(db: Database, key: str, kind: str, org_id: str) -> dict[str, Any] | None:
    """The state under `key`, removed so that it serves once; None when unknown, of another
    org or kind, already used or expired."""
    if not key or len(key) > 128:
        return None
    async with db.transaction() as conn:
        row = await conn.fetchrow("SELECT data, expires_at FROM identity_fed_state WHERE handle = ? AND kind = ?"
                                  " AND org_id = ?", [key, kind, org_id])
        if row is None:
            return None
        n = await conn.execute("DELETE FROM identity_fed_state WHERE handle = ?", [key])
    exp = db.read_ts(row[1])
    if n != 1 or (exp is not None and exp < utcnow()):
        return None
    data: dict[str, Any] = loads(row[0])
    return data


async def consume_once(db: Database, org_id: str, kind: str, ident: str, ttl: int = REPLAY_TTL) -> bool:
    """Remember an assertion/token id; False when it was seen before (a replay)."""
    key = kind + ":" + hashlib.sha256(f"{org_id}\x00{ident}".encode()).hexdigest()
    try:
        await put_state(db, org_id, kind, {}, key=key, ttl=ttl)
    except Exception as exc:
        if is_unique_violation(exc):
            return False
        raise
    return True


# -- audit ---------------------------------------------------------------------------


async def audit_refusal(db: Database, org_id: str, idp_id: str | None, protocol: str, reason: str,
                        detail: str, client_addr: str | None, resource: str = "identity-providers") -> None:
    ctx = identity._ctx(system_context(org_id).principal, client_addr)
    async with UnitOfWork(db, ctx) as uow:
        uow.audit("identity", resource, idp_id, "federated_sign_in_refused", None,
                  {"protocol": protocol, "reason": reason, "detail": detail[:500]})
    log.info("federated sign-in refused", extra={"fields": {"org_id": org_id, "protocol": protocol,
                                                            "reason": reason}})


# -- provisioning and the session -----------------------------------------------------


def _values(claims: dict[str, Any], name: str) -> list[str]:
    v = claims.get(name)
    if v is None:
        return []
    if isinstance(v, list | tuple):
        return [str(x) for x in v]
    return [str(v)]


def map_roles(idp: dict[str, Any], claims: dict[str, Any]) -> list[str]:
    """Roles from the IdP's claims/attributes by the connection's role map, plus its defaults."""
    roles: list[str] = []
    for rule in idp.get("role_map") or []:
        if str(rule.get("value")) in _values(claims, str(rule.get("claim"))):
            roles.append(str(rule["role"]))
    roles += list(idp.get("default_roles") or [])
    return list(dict.fromkeys(roles)) or ["member"]


def claim(idp: dict[str, Any], claims: dict[str, Any], field: str, fallbacks: tuple[str, ...]) -> str | None:
    names = [(idp.get("attribute_map") or {}).get(field), *fallbacks]
    for n in names:
        if n:
            vals = _values(claims, n)
            if vals and vals[0].strip():
                return vals[0].strip()
    return None


async def provision(nx: Any, idp: dict[str, Any], subject: str, email: str | None, name: str | None,
                    claims: dict[str, Any], client_addr: str | None, *, email_trusted: bool = True) -> str:
    """The user this external subject is: linked before, else matched by email, else created
    (just-in-time). Roles follow the role map on every sign-in when the connection says so."""
    db: Database = nx.db
    org_id = idp["org_id"]
    roles = map_roles(idp, claims)
    ctx = identity._ctx(system_context(org_id).principal, client_addr)
    async with UnitOfWork(db, ctx) as uow:
        user_id = await uow.conn.fetchval(
            "SELECT user_id FROM identity_fed_link WHERE idp_id = ? AND subject = ?", [idp["id"], subject[:255]])
        user = await uow.get(identity.USER, user_id) if user_id else None
        if user_id and user is None:
            # The linked user was deleted: the subject is free to be linked again (or refused).
            await uow.conn.execute("DELETE FROM identity_fed_link WHERE idp_id = ? AND subject = ?",
                                   [idp["id"], subject[:255]])
        if user is None:
            if not email:
                raise FederationError("The identity provider sent no email address.", "no_email")
            email = email.lower()
            found = await uow.find(identity.USER, {"email": email}, include_deleted=True)
            if found and found[0]["deleted_at"] is not None:
                raise FederationError("This account was deleted; an administrator can restore it.", "deleted", 403)
            if found:
                if not email_trusted:
                    raise FederationError("The identity provider has not verified this email address.",
                                          "email_not_verified", 403)
                user = found[0]
            elif not idp.get("jit_provisioning", True):
                raise FederationError("No account exists for this person, and this provider does not create"
                                      " accounts.", "no_account", 403)
            else:
                user = await identity.UserService.instance().create(uow, {
                    "email": email, "name": (name or email.split("@")[0])[:200], "password": None,
                    "roles": roles, "timezone": "UTC"})
                # JIT users sign in through their IdP: they are active without a NEXUS password.
                user = await identity.UserService.instance().change(uow, user, {"status": "active"}, "provisioned")
            await uow.conn.execute(
                "INSERT INTO identity_fed_link (idp_id, subject, org_id, user_id, created_at) VALUES (?,?,?,?,?)",
                [idp["id"], subject[:255], org_id, user["id"], db.ts(uow.now)])
            uow.audit("identity", "users", user["id"], "federated_identity_linked", None,
                      {"idp_id": idp["id"], "idp": idp["slug"], "subject": subject[:255]})
        if user["status"] == "deactivated":
            raise FederationError("This account is deactivated.", "deactivated", 403)
        if idp.get("sync_roles", True) and idp.get("role_map"):
            held = await identity._role_names(uow, user["id"])
            wanted = [*(["owner"] if "owner" in held else []), *roles]
            if sorted(set(wanted)) != sorted(held):
                names = await identity.set_roles(uow, user["id"], wanted)
                await identity.UserService.instance().change(uow, user, {"roles": names}, "roles_assigned")
        await uow.conn.execute("UPDATE identity_fed_link SET last_used_at = ? WHERE idp_id = ? AND subject = ?",
                               [db.ts(uow.now), idp["id"], subject[:255]])
        return str(user["id"])


async def start_session(nx: Any, idp: dict[str, Any], user_id: str, client_addr: str | None,
                        user_agent: str | None) -> dict[str, Any]:
    """A NEXUS session for the user, as a password sign-in would give (the same tokens).

    It ends like every other sign-in (session with auth_time/amr, audit, sign-in history). The
    org's MFA rule is the external IdP's to enforce: it authenticated the person, NEXUS trusts it.
    """
    signin = nx.state["identity.signin"]
    tokens: dict[str, Any] = await signin.open_session(
        user_id, idp["org_id"], client_addr, user_agent, amr=["fed"], method=f"{idp['protocol']}:{idp['slug']}")
    return tokens
