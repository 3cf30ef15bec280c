"""Identity use cases: the only code that changes identity state."""

from __future__ import annotations

import logging
import os
import secrets
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from nexus.kernel.auth import API_KEY_PREFIX, Authenticator, hash_secret, require_recent_auth, split_api_key
from nexus.kernel.cache import cache_of
from nexus.kernel.context import Context, Principal, request_id_var, system_context
from nexus.kernel.db import Database
from nexus.kernel.errors import Problem, validation
from nexus.kernel.ids import new_id
from nexus.kernel.jsonutil import loads, utcnow
from nexus.kernel.permissions import has_permission
from nexus.kernel.records import TableSpec, UnitOfWork
from nexus.kernel.resources import RecordService

from . import models
from .security import core as security_core
from .security import mfa as security_mfa
from .security import policy as security_policy

log = logging.getLogger("nexus.identity")

if os.environ.get("NEXUS_PASSWORD_HASH") == "fast":
    # Test suites create hundreds of users; production keeps argon2-cffi's RFC 9106 defaults.
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
else:
    hasher = PasswordHasher()
_DUMMY_HASH = hasher.hash("not-a-real-password-used-for-timing")

BUILTIN_ROLES: dict[str, tuple[str, list[str]]] = {
    "owner": ("Owns the organisation: everything, including other owners.", ["*"]),
    "admin": ("Administers users, roles and every app.", ["*"]),
    "member": ("Works in every app; sees colleagues.", [
        "*.*.read", "*.*.create", "*.*.update", "*.*.delete", "*.*.export", "*.*.import",
        "identity.users.read", "identity.roles.read", "identity.api-keys.read", "identity.api-keys.create",
        "identity.api-keys.delete",
    ]),
    "viewer": ("Reads every app.", ["*.*.read", "*.*.export", "identity.users.read", "identity.roles.read"]),
}

MAX_FAILED_BEFORE_LOCK = 5
LOCK_BASE_SECONDS = 30
LOCK_MAX_SECONDS = 3600
ADDR_WINDOW_SECONDS = 900
ADDR_MAX_FAILURES = 30

USER = TableSpec(models.User, hidden=("password_hash", "failed_logins", "locked_until"))
USER_ALL = TableSpec(models.User)
ROLE = TableSpec(models.Role)
APIKEY = TableSpec(models.ApiKey, hidden=("secret_hash",))


# Every authenticator of this process (one per Nexus): a revocation or grant change clears
# their principal caches. A set rather than one global, so that a second Nexus in the same
# process (tests, CLI) cannot leave the first one's cache stale.
_authenticators: weakref.WeakSet[Authenticator] = weakref.WeakSet()


def register_authenticator(auth: Authenticator) -> None:
    _authenticators.add(auth)


def invalid_grant(detail: str, status: int = 400, headers: dict[str, str] | None = None) -> Problem:
    # OAuth 2.0 clients read `error`; everyone else reads the problem fields.
    return Problem(status, detail, type="invalid-grant", title="Sign-in failed", headers=headers,
                   extra={"error": "invalid_grant", "error_description": detail})


# -- orgs and bootstrap ----------------------------------------------------------------


async def create_org(db: Database, slug: str, name: str) -> str:
    org_id = new_id()
    ctx = system_context(org_id)
    async with UnitOfWork(db, ctx) as uow:
        if await uow.conn.fetchval("SELECT 1 FROM identity_org WHERE slug = ?", [slug]):
            raise Problem(409, f"An organisation with slug {slug!r} exists.")
        await uow.conn.execute(
            "INSERT INTO identity_org (id, slug, name, created_at, timezone) VALUES (?,?,?,?,?)",
            [org_id, slug, name, db.ts(uow.now), "UTC"],
        )
        for role, (desc, perms) in BUILTIN_ROLES.items():
            await uow.insert(ROLE, {"name": role, "description": desc, "permissions": perms, "builtin": True})
        uow.audit("identity", "orgs", org_id, "created", None, {"id": org_id, "slug": slug, "name": name})
        uow.emit("nexus.identity.org.created", org_id, {"id": org_id, "slug": slug, "name": name})
    return org_id


async def org_by_slug(db: Database, slug: str) -> str | None:
    async with db.reader() as conn:
        return await conn.fetchval("SELECT id FROM identity_org WHERE slug = ?", [slug])  # type: ignore[no-any-return]


async def count_orgs(db: Database) -> int:
    async with db.reader() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM identity_org"))


async def create_admin(db: Database, email: str, password: str, org_slug: str = "default",
                       org_name: str | None = None) -> tuple[str, str, bool]:
    """(org id, user id, created): an owner of the org, creating the org if new.

    For an existing user (even a deactivated, locked or deleted one) this is the way back
    in: the password is set, the account unlocked and reactivated, and owner added."""
    org_id = await org_by_slug(db, org_slug)
    if org_id is None:
        # A new org has the default policy: check before creating anything, so that a refused
        # password leaves no org without an owner behind.
        problems = security_policy.password_problems(security_policy.DEFAULT, password, email.strip().lower())
        if problems:
            raise validation([{"pointer": "/password", "detail": p} for p in problems],
                             detail="The password does not meet the password policy.")
        org_id = await create_org(db, org_slug, org_name or org_slug.replace("-", " ").title())
    ctx = system_context(org_id)
    email = email.strip().lower()
    async with UnitOfWork(db, ctx) as uow:
        existing = await uow.find(USER, {"email": email}, include_deleted=True)
        if existing:
            user = existing[0]
            roles = await set_roles(uow, user["id"], [*await _role_names(uow, user["id"]), "owner"])
            _before, after = await uow.update(
                USER, user["id"], {"password_hash": hasher.hash(password), "status": "active", "failed_logins": 0,
                                   "locked_until": None, "deleted_at": None, "roles": roles},
                include_deleted=True)
            UserService.instance().record_change(uow, "admin_reset", user, after)
            return org_id, user["id"], False
        user = await UserService.instance().create(uow, {"email": email, "name": email.split("@")[0],
                                                         "password": password, "roles": ["owner"],
                                                         "timezone": "UTC"})
    return org_id, user["id"], True


# -- roles ---------------------------------------------------------------------------


async def set_roles(uow: UnitOfWork, user_id: str, role_names: list[str]) -> list[str]:
    """Replace a user's roles. Nobody grants a role whose permissions they do not hold,
    and only an owner makes someone an owner."""
    names = list(dict.fromkeys(role_names))
    roles = {r["name"]: r for r in await uow.find(ROLE, {})}
    missing = [n for n in names if n not in roles]
    if missing:
        raise validation([{"pointer": "/roles", "detail": f"no such role: {', '.join(missing)}"}])
    p = uow.ctx.principal
    if p.kind != "system":
        held = set(await _role_names(uow, user_id))
        if "owner" in names and "owner" not in held and "owner" not in p.roles:
            raise Problem(403, "Only an owner can make someone an owner.")
        for n in names:
            if n not in held:
                _no_escalation(p, roles[n]["permissions"], f"the role {n!r}")
    await uow.conn.execute("DELETE FROM identity_membership WHERE org_id = ? AND user_id = ?", [uow.ctx.org_id, user_id])
    await uow.conn.executemany(
        "INSERT INTO identity_membership (org_id, user_id, role_id, created_at) VALUES (?,?,?,?)",
        [(uow.ctx.org_id, user_id, roles[n]["id"], uow.db.ts(uow.now)) for n in names],
    )
    uow.after_commit.append(_invalidate)
    return names


async def _role_names(uow: UnitOfWork, user_id: str) -> list[str]:
    """The roles a user holds now (from memberships, not the denormalised column)."""
    _perms, names = await permissions_of(uow.conn, uow.ctx.org_id, user_id)
    return list(names)


async def _may_manage(uow: UnitOfWork, user_id: str) -> list[str]:
    """Refuse to act on (set the password of, change the roles of, deactivate, delete) a user
    who holds what the caller does not: taking over such an account would be a grant.
    Returns the target's current roles."""
    perms, names = await permissions_of(uow.conn, uow.ctx.org_id, user_id)
    p = uow.ctx.principal
    if p.kind == "system" or user_id == p.user_id:
        return list(names)
    if "owner" in names and "owner" not in p.roles:
        raise Problem(403, "Only an owner can change an owner.")
    for perm in sorted(perms):
        if not _holds(p, perm):
            raise Problem(403, f"You cannot change a user who holds {perm!r}: you do not hold it.",
                          extra={"permission": perm})
    return list(names)


def _invalidate() -> None:
    for auth in list(_authenticators):
        auth.invalidate_all()


async def permissions_of(conn: Any, org_id: str, user_id: str) -> tuple[frozenset[str], tuple[str, ...]]:
    rows = await conn.fetch(
        "SELECT r.name, r.permissions FROM identity_membership m JOIN identity_role r ON r.id = m.role_id"
        " WHERE m.org_id = ? AND m.user_id = ? AND r.deleted_at IS NULL",
        [org_id, user_id],
    )
    perms: set[str] = set()
    names = []
    for name, raw in rows:
        names.append(name)
        perms.update(raw if isinstance(raw, list) else loads(raw))
    return frozenset(perms), tuple(sorted(names))


# -- record services ---------------------------------------------------------------


class UserService(RecordService):
    _instance: UserService | None = None

    @classmethod
    def instance(cls) -> UserService:
        assert cls._instance is not None
        return cls._instance

    def __init__(self, resource: Any) -> None:
        super().__init__(resource)
        UserService._instance = self

    async def create(self, uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
        values = dict(values)
        password = values.pop("password", None)
        roles = values.pop("roles", None) or ["member"]
        email = values["email"]
        for found in await uow.find(USER, {"email": email}, include_deleted=True):
            detail = "a user with this email exists in this org"
            if found["deleted_at"] is not None:
                detail += " (deleted: restore them instead)"
            raise validation([{"pointer": "/email", "detail": detail}])
        if password:
            await security_policy.check_password(uow, None, email, password)
        values["status"] = "active" if password else "invited"
        values["password_hash"] = hasher.hash(password) if password else None
        values["roles"] = roles
        record = await uow.insert(USER, values)
        if values["password_hash"]:
            await security_policy.remember_password(uow, record["id"], values["password_hash"])
        record["roles"] = await set_roles(uow, record["id"], roles)
        self.record_change(uow, "created", None, record)
        return record

    async def assign_roles(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        held = await _may_manage(uow, record["id"])
        if "owner" in held and "owner" not in body.roles:
            await _ensure_other_owner(uow, record["id"])
        names = await set_roles(uow, record["id"], body.roles)
        return await self.change(uow, record, {"roles": names}, "roles_assigned")

    async def deactivate(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["id"] == uow.ctx.user_id:
            raise Problem(409, "You cannot deactivate yourself.")
        if record["status"] == "deactivated":
            return record
        if "owner" in await _may_manage(uow, record["id"]):
            await _ensure_other_owner(uow, record["id"])
        await _end_sessions(uow, record["id"], "deactivated")
        return await self.change(uow, record, {"status": "deactivated"}, "deactivated")

    async def reactivate(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] != "deactivated":
            raise Problem(409, "The user is not deactivated.")
        full = await uow.get(USER_ALL, record["id"])
        status = "active" if full and full.get("password_hash") else "invited"
        return await self.change(uow, record, {"status": status}, "reactivated")

    async def set_password(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        await _may_manage(uow, record["id"])
        pol = await security_policy.check_password(uow, record["id"], record["email"], body.password)
        require_recent_auth(uow.ctx.principal, pol.step_up_max_age, action="setting a password")
        # A new password ends the user's other sessions (not the caller's own, when it is theirs).
        await _end_sessions(uow, record["id"], "password_changed", keep=uow.ctx.principal.session_id)
        status = "active" if record["status"] == "invited" else record["status"]
        new_hash = hasher.hash(body.password)
        await security_policy.remember_password(uow, record["id"], new_hash)
        return await self.change(uow, record, {"password_hash": new_hash, "failed_logins": 0,
                                               "locked_until": None, "status": status}, "password_set")

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        if record["id"] == uow.ctx.user_id:
            raise Problem(409, "You cannot delete yourself.")
        if "owner" in await _may_manage(uow, record["id"]):
            await _ensure_other_owner(uow, record["id"])
        await _end_sessions(uow, record["id"], "deleted")


async def _end_sessions(uow: UnitOfWork, user_id: str, reason: str, keep: str | None = None) -> None:
    await uow.conn.execute(
        "UPDATE identity_session SET revoked_at = ?, revoked_reason = ? WHERE org_id = ? AND user_id = ?"
        " AND revoked_at IS NULL AND id <> ?", [uow.db.ts(uow.now), reason, uow.ctx.org_id, user_id, keep or ""])
    uow.after_commit.append(_invalidate)


async def _ensure_other_owner(uow: UnitOfWork, user_id: str) -> None:
    if uow.dialect == "postgresql":
        # Serialise owner removals per org, so that two owners demoting each other at the same
        # moment cannot both pass the check (SQLite serialises every write transaction anyway).
        await uow.conn.fetchval("SELECT id FROM identity_org WHERE id = ? FOR UPDATE", [uow.ctx.org_id])
    n = await uow.conn.fetchval(
        "SELECT count(*) FROM identity_membership m JOIN identity_role r ON r.id = m.role_id"
        " JOIN identity_user u ON u.id = m.user_id"
        " WHERE m.org_id = ? AND r.name = 'owner' AND m.user_id <> ? AND u.status = 'active' AND u.deleted_at IS NULL",
        [uow.ctx.org_id, user_id])
    if not n:
        raise Problem(409, "The organisation must keep at least one active owner.")


class RoleService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        await _role_name_free(uow, values["name"])
        values["builtin"] = False
        _no_escalation(uow.ctx.principal, values.get("permissions") or [])

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if before["builtin"]:
            raise Problem(409, "Built-in roles cannot be changed; create a custom role.")
        if "name" in changes and changes["name"] != before["name"]:
            await _role_name_free(uow, changes["name"])
        _no_escalation(uow.ctx.principal, changes.get("permissions") or [])
        uow.after_commit.append(_invalidate)

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        if record["builtin"]:
            raise Problem(409, "Built-in roles cannot be deleted.")
        uow.after_commit.append(_invalidate)

    async def restore(self, uow: UnitOfWork, record_id: str) -> dict[str, Any]:
        out = await super().restore(uow, record_id)
        uow.after_commit.append(_invalidate)
        return out


async def _role_name_free(uow: UnitOfWork, name: str) -> None:
    # Deleted roles keep their name (the unique constraint covers them), so that a restore
    # cannot collide; say so instead of failing on the constraint.
    for found in await uow.find(ROLE, {"name": name}, include_deleted=True):
        detail = "a role with this name exists"
        if found["deleted_at"] is not None:
            detail += " (deleted: restore it or choose another name)"
        raise validation([{"pointer": "/name", "detail": detail}])


def _holds(principal: Principal, perm: str) -> bool:
    """Whether the principal holds everything a granted permission (maybe a pattern) reaches.
    Wildcard segments are probed with a name no app has, so a pattern is held only when
    the principal holds the same or a wider pattern."""
    if principal.kind == "system" or "*" in principal.permissions:
        return True
    probe = perm.replace("*", "x") if perm != "*" else "x.x.x"
    return has_permission(principal, probe)


def _no_escalation(principal: Principal, perms: list[str], what: str = "", verb: str = "grant") -> None:
    """Nobody grants what they do not hold themselves."""
    for perm in perms:
        if not _holds(principal, perm):
            where = f" ({what})" if what else ""
            raise Problem(403, f"You cannot {verb} {perm!r}{where}: you do not hold it.",
                          extra={"permission": perm})


class ApiKeyService(RecordService):
    _instance: ApiKeyService | None = None

    @classmethod
    def instance(cls) -> ApiKeyService:
        assert cls._instance is not None
        return cls._instance

    def __init__(self, resource: Any) -> None:
        super().__init__(resource)
        ApiKeyService._instance = self

    async def create(self, uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
        p = uow.ctx.principal
        perms = list(dict.fromkeys(values.get("permissions") or []))
        _no_escalation(p, perms)
        if p.kind == "user":
            pol = await security_policy.load(uow.conn, uow.ctx.org_id)
            require_recent_auth(p, pol.step_up_max_age, action="creating an API key")
        if not perms and p.kind == "api_key":
            # "All of my permissions" asked with a key means the key's, never its owner's.
            perms = sorted(p.permissions)
        expires_at = _future(values.get("expires_at"), uow.now)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        row = {
            "name": values["name"],
            "user_id": p.user_id,
            "prefix": key_id,
            "secret_hash": hash_secret(secret),
            "permissions": perms,
            "expires_at": expires_at,
        }
        record = await uow.insert(APIKEY, row)
        self.record_change(uow, "created", None, record)
        shown = dict(record)
        shown["key"] = f"{API_KEY_PREFIX}{key_id}_{secret}"  # shown once, stored only hashed
        return shown

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        _own_key(uow, before)
        if "permissions" in changes:
            changes["permissions"] = list(dict.fromkeys(changes["permissions"] or []))
            _no_escalation(uow.ctx.principal, changes["permissions"])
        if changes.get("expires_at") is not None:
            changes["expires_at"] = _future(changes["expires_at"], uow.now)
        uow.after_commit.append(_invalidate)

    async def revoke(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        _own_key(uow, record)
        if record["revoked_at"] is not None:
            return record
        uow.after_commit.append(_invalidate)
        return await self.change(uow, record, {"revoked_at": uow.now}, "revoked")

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        _own_key(uow, record)
        uow.after_commit.append(_invalidate)

    async def restore(self, uow: UnitOfWork, record_id: str) -> dict[str, Any]:
        record = await uow.require(self.spec, record_id, include_deleted=True)
        _own_key(uow, record)
        out = await super().restore(uow, record_id)
        uow.after_commit.append(_invalidate)
        return out


def _own_key(uow: UnitOfWork, record: dict[str, Any]) -> None:
    """A key is managed by its owner or by a holder of identity.api-keys.all (the resource's
    record rule already hides other people's keys over HTTP; this holds for every caller)."""
    p = uow.ctx.principal
    if record["user_id"] != p.user_id and not has_permission(p, "identity.api-keys.all"):
        raise Problem(404, "No such api_key.")


def _future(value: datetime | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value <= now:
        raise validation([{"pointer": "/expires_at", "detail": "must be in the future"}])
    return value


# -- sign-in ----------------------------------------------------------------------


class SignIn:
    def __init__(self, db: Database, nx: Any) -> None:
        self.db = db
        self.nx = nx
        # Directory sign-in (LDAP bind), plugged in by identity.directory.setup.
        self.directory: Any = None

    async def password_grant(self, username: str, password: str, org_slug: str | None,
                             client_addr: str | None, user_agent: str | None) -> dict[str, Any]:
        addr_key = f"identity:signin-failures:{client_addr or '?'}"
        if await self._addr_failures(addr_key) >= ADDR_MAX_FAILURES:
            raise invalid_grant("Too many failed sign-ins from this address; wait and try again.", 429,
                                {"Retry-After": str(ADDR_WINDOW_SECONDS)})
        email = username.strip().lower()
        sql = ("SELECT u.id, u.org_id, u.password_hash, u.status, u.failed_logins, u.locked_until, o.slug"
               " FROM identity_user u JOIN identity_org o ON o.id = u.org_id"
               " WHERE u.email = ? AND u.deleted_at IS NULL")
        args: list[Any] = [email]
        if org_slug:
            sql += " AND o.slug = ?"
            args.append(org_slug)
        async with self.db.reader() as conn:
            rows = await conn.fetch(sql, args)
        if not rows and self.directory is not None:
            # A directory user not imported yet, or signing in with their directory username.
            found = await self.directory.provision(username.strip(), password, org_slug)
            if found is not None:
                async with self.db.reader() as conn:
                    rows = await conn.fetch(sql, [found, *args[1:]])
        if len(rows) > 1:
            raise Problem(400, "This email belongs to several organisations; pass org=<slug>.",
                          extra={"error": "invalid_request"})
        now = utcnow()
        if not rows:
            _verify(_DUMMY_HASH, password)
            await self._fail_addr(addr_key)
            await self._audit_failure(None, None, email, client_addr, "unknown user")
            raise invalid_grant("Wrong email or password.")
        user_id, org_id, pw_hash, status, _failed, locked_until, _slug = rows[0]
        locked = self.db.read_ts(locked_until)
        if locked is not None and locked > now:
            wait = int((locked - now).total_seconds()) + 1
            await self._audit_failure(org_id, user_id, email, client_addr, "locked", user_agent)
            raise invalid_grant("Too many failed sign-ins; the account is locked for a while.", 429,
                                {"Retry-After": str(wait)})
        # Always verify (a dummy hash when there is no password), so that neither the answer
        # nor its timing tells whether the account exists, is invited or is deactivated.
        password_ok = _verify(pw_hash or _DUMMY_HASH, password) and bool(pw_hash)
        if self.directory is not None:
            by_directory = await self.directory.check_password(org_id, user_id, password)
            if by_directory is not None:
                password_ok = by_directory  # the directory's password, not a local one
        if password_ok and status != "active":
            await self._audit_failure(org_id, user_id, email, client_addr, status, user_agent)
            raise invalid_grant("This account is not active.")
        if not password_ok:
            await self._fail_addr(addr_key)
            async with UnitOfWork(self.db, _ctx(system_context(org_id).principal, client_addr)) as uow:
                # Counted in the database (not from the row read above) so that concurrent
                # failures all count.
                await uow.conn.execute(
                    "UPDATE identity_user SET failed_logins = COALESCE(failed_logins, 0) + 1 WHERE id = ?", [user_id])
                failed = int(await uow.conn.fetchval("SELECT failed_logins FROM identity_user WHERE id = ?",
                                                     [user_id]))
                if failed >= MAX_FAILED_BEFORE_LOCK:
                    seconds = LOCK_MAX_SECONDS
                    if failed - MAX_FAILED_BEFORE_LOCK < 20:
                        seconds = min(LOCK_BASE_SECONDS * 2 ** (failed - MAX_FAILED_BEFORE_LOCK), LOCK_MAX_SECONDS)
                    await uow.conn.execute("UPDATE identity_user SET locked_until = ? WHERE id = ?",
                                           [self.db.ts(now + timedelta(seconds=seconds)), user_id])
                uow.audit("identity", "users", user_id, "sign_in_failed", None,
                          {"email": email, "reason": "wrong password" if pw_hash else "no password",
                           "failed_logins": failed})
                await security_core.record_sign_in(uow, user_id, "password", False,
                                                   "wrong password" if pw_hash else "no password", user_agent)
            raise invalid_grant("Wrong email or password.")
        if pw_hash and hasher.check_needs_rehash(pw_hash):  # directory users have no local hash
            async with self.db.transaction() as conn:
                await conn.execute("UPDATE identity_user SET password_hash = ? WHERE id = ?",
                                   [hasher.hash(password), user_id])
        # A user with a second factor (or whose org requires one) gets an MFA challenge, not
        # tokens; the failure counter is only cleared once the whole sign-in succeeds.
        challenge = await security_mfa.gate(self, user_id, org_id, client_addr, user_agent)
        if challenge is not None:
            return challenge
        return await self.open_session(user_id, org_id, client_addr, user_agent, amr=["pwd"], method="password")

    async def open_session(self, user_id: str, org_id: str, client_addr: str | None, user_agent: str | None,
                           *, amr: list[str], method: str) -> dict[str, Any]:
        """The end of every successful sign-in: a new session, its tokens and a history line."""
        ctx = _ctx(Principal(user_id=user_id, org_id=org_id, kind="user"), client_addr)
        async with UnitOfWork(self.db, ctx) as uow:
            await uow.conn.execute(
                "UPDATE identity_user SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE id = ?",
                [self.db.ts(uow.now), user_id])
            tokens = await self._new_session(uow, user_id, org_id, client_addr, user_agent, amr=amr)
            uow.audit("identity", "users", user_id, "signed_in", None,
                      {"session_id": tokens["session_id"], "method": method, "amr": amr})
            await security_core.record_sign_in(uow, user_id, method, True, None, user_agent, tokens["session_id"])
        tokens.pop("session_id")
        return tokens

    async def refresh_grant(self, refresh_token: str, client_addr: str | None) -> dict[str, Any]:
        token_id, secret = _split_refresh(refresh_token)
        async with self.db.reader() as conn:
            row = await conn.fetchrow(
                "SELECT t.secret_hash, t.used_at, s.id, s.org_id, s.user_id, s.expires_at, s.revoked_at, u.status,"
                " u.deleted_at FROM identity_refresh_token t JOIN identity_session s ON s.id = t.session_id"
                " JOIN identity_user u ON u.id = s.user_id WHERE t.id = ?", [token_id])
        if row is None or not secrets.compare_digest(row[0], hash_secret(secret)):
            raise invalid_grant("The refresh token is invalid.")
        _secret_hash, used_at, session_id, org_id, user_id, expires_at, revoked_at, status, deleted_at = row
        now = utcnow()
        ctx = _ctx(Principal(user_id=user_id, org_id=org_id, kind="user", session_id=session_id), client_addr)
        if used_at is not None:
            await self._reused(ctx, session_id, token_id)
        if revoked_at is not None or status != "active" or deleted_at is not None:
            raise invalid_grant("The session has ended; sign in again.")
        exp = self.db.read_ts(expires_at)
        if exp is not None and exp < now:
            raise invalid_grant("The refresh token has expired.")
        async with UnitOfWork(self.db, ctx) as uow:
            n = await uow.conn.execute(
                "UPDATE identity_refresh_token SET used_at = ? WHERE id = ? AND used_at IS NULL",
                [self.db.ts(now), token_id])
            if n == 1:
                await uow.conn.execute("UPDATE identity_session SET last_seen_at = ? WHERE id = ?",
                                       [self.db.ts(now), session_id])
            new_refresh = await self._new_refresh(uow, session_id) if n == 1 else None
        if new_refresh is None:
            # Another request rotated this token a moment ago: the same token used twice.
            await self._reused(ctx, session_id, token_id)
        access, ttl = self.nx.auth.issue_access_token(user_id=user_id, org_id=org_id, session_id=session_id)
        return {"access_token": access, "token_type": "Bearer", "expires_in": ttl, "refresh_token": new_refresh}

    async def _reused(self, ctx: Context, session_id: str, token_id: str) -> None:
        """Reuse of a rotated token means it leaked: end the whole session (RFC 9700 §4.14.2)."""
        async with UnitOfWork(self.db, ctx) as uow:
            await uow.conn.execute(
                "UPDATE identity_session SET revoked_at = ?, revoked_reason = 'refresh_token_reuse'"
                " WHERE id = ? AND revoked_at IS NULL", [self.db.ts(uow.now), session_id])
            uow.audit("identity", "sessions", session_id, "refresh_token_reused", None, {"token_id": token_id})
        _invalidate()
        raise invalid_grant("The refresh token was already used; the session has been ended.")

    async def revoke(self, token: str, client_addr: str | None = None) -> None:
        """RFC 7009. A refresh or access token ends its session; an API key is revoked.
        Unknown, malformed or already revoked tokens are not an error."""
        if token.startswith("nxr_"):
            try:
                token_id, secret = _split_refresh(token)
            except Problem:
                return
            async with self.db.reader() as conn:
                row = await conn.fetchrow(
                    "SELECT t.secret_hash, s.id, s.org_id, s.user_id FROM identity_refresh_token t"
                    " JOIN identity_session s ON s.id = t.session_id WHERE t.id = ?", [token_id])
            if row is None or not secrets.compare_digest(row[0], hash_secret(secret)):
                return
            await self.end_session(row[1], row[2], row[3], "revoked", client_addr)
        elif token.startswith(API_KEY_PREFIX):
            await self._revoke_api_key(token, client_addr)
        else:
            try:
                claims = self.nx.auth.decode_access_token(token)
            except Problem:
                return
            await self.end_session(claims["sid"], claims["org"], claims["sub"], "revoked", client_addr)

    async def _revoke_api_key(self, key: str, client_addr: str | None) -> None:
        try:
            key_id, secret_hash = split_api_key(key)
        except Problem:
            return
        async with self.db.reader() as conn:
            row = await conn.fetchrow("SELECT id, org_id, user_id, secret_hash FROM identity_api_key"
                                      " WHERE prefix = ? AND revoked_at IS NULL AND deleted_at IS NULL", [key_id])
        if row is None or not secrets.compare_digest(row[3], secret_hash):
            return
        ctx = _ctx(Principal(user_id=row[2], org_id=row[1], kind="api_key", api_key_id=row[0]), client_addr)
        async with UnitOfWork(self.db, ctx) as uow:
            record = await uow.get(APIKEY, row[0])
            if record is not None and record["revoked_at"] is None:
                await ApiKeyService.instance().change(uow, record, {"revoked_at": uow.now}, "revoked")
        _invalidate()

    async def end_session(self, session_id: str, org_id: str, user_id: str, reason: str,
                          client_addr: str | None = None) -> None:
        ctx = _ctx(Principal(user_id=user_id, org_id=org_id, kind="user", session_id=session_id), client_addr)
        async with UnitOfWork(self.db, ctx) as uow:
            n = await uow.conn.execute(
                "UPDATE identity_session SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND org_id = ?"
                " AND user_id = ? AND revoked_at IS NULL",
                [self.db.ts(uow.now), reason, session_id, org_id, user_id])
            if n:
                uow.audit("identity", "sessions", session_id, "signed_out", None, {"reason": reason})
        _invalidate()

    async def _new_session(self, uow: UnitOfWork, user_id: str, org_id: str, client_addr: str | None,
                           user_agent: str | None, amr: list[str] | None = None) -> dict[str, Any]:
        session_id = new_id()
        settings = self.nx.settings
        await uow.conn.execute(
            "INSERT INTO identity_session (id, org_id, user_id, created_at, expires_at, client_addr, user_agent,"
            " auth_time, amr, last_seen_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [session_id, org_id, user_id, self.db.ts(uow.now),
             self.db.ts(uow.now + timedelta(seconds=settings.refresh_token_ttl)), client_addr,
             (user_agent or "")[:300], self.db.ts(uow.now), self.db.json(amr or ["pwd"]), self.db.ts(uow.now)])
        refresh = await self._new_refresh(uow, session_id)
        access, ttl = self.nx.auth.issue_access_token(user_id=user_id, org_id=org_id, session_id=session_id)
        return {"access_token": access, "token_type": "Bearer", "expires_in": ttl, "refresh_token": refresh,
                "session_id": session_id}

    async def _new_refresh(self, uow: UnitOfWork, session_id: str) -> str:
        token_id = new_id()
        secret = secrets.token_urlsafe(32)
        await uow.conn.execute(
            "INSERT INTO identity_refresh_token (id, session_id, secret_hash, created_at) VALUES (?,?,?,?)",
            [token_id, session_id, hash_secret(secret), self.db.ts(uow.now)])
        return f"nxr_{token_id}_{secret}"

    # Failures per client address are counted in the shared cache (Redis when configured), so
    # that every process of an installation sees them; a fixed window from the first failure.
    # A cache that does not answer fails open: the per-account lockout still holds.
    async def _addr_failures(self, key: str) -> int:
        try:
            return int(await cache_of(self.nx).get(key) or 0)
        except Exception as exc:
            log.warning("sign-in failure count unavailable", extra={"fields": {"error": str(exc)[:200]}})
            return 0

    async def _fail_addr(self, key: str) -> None:
        try:
            await cache_of(self.nx).incr(key, 1, ttl=ADDR_WINDOW_SECONDS)
        except Exception as exc:
            log.warning("sign-in failure not counted", extra={"fields": {"error": str(exc)[:200]}})

    async def _audit_failure(self, org_id: str | None, user_id: str | None, email: str, addr: str | None,
                             reason: str, user_agent: str | None = None) -> None:
        if org_id is None:
            return  # no org to file it under; counted per address instead
        async with UnitOfWork(self.db, _ctx(system_context(org_id).principal, addr)) as uow:
            uow.audit("identity", "users", user_id, "sign_in_failed", None, {"email": email, "reason": reason})
            await security_core.record_sign_in(uow, user_id, "password", False, reason, user_agent)


def _ctx(principal: Principal, client_addr: str | None) -> Context:
    """A context for sign-in work, so that its audit rows carry the request id and address."""
    return Context(principal, request_id_var.get(), client_addr)


def _verify(pw_hash: str, password: str) -> bool:
    try:
        return hasher.verify(pw_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _split_refresh(token: str) -> tuple[str, str]:
    if not token.startswith("nxr_"):
        raise invalid_grant("The refresh token is invalid.")
    token_id, _, secret = token[4:].partition("_")
    if len(token_id) != 26 or not secret:
        raise invalid_grant("The refresh token is invalid.")
    return token_id, secret


# -- the kernel's auth backend ---------------------------------------------------------


class IdentityAuthBackend:
    async def principal_for_session(self, db: Database, session_id: str, user_id: str, org_id: str) -> Principal | None:
        async with db.reader() as conn:
            row = await conn.fetchrow(
                "SELECT u.email, u.name, u.status, s.revoked_at, s.expires_at, s.auth_time, s.amr FROM identity_session s"
                " JOIN identity_user u ON u.id = s.user_id"
                " WHERE s.id = ? AND s.user_id = ? AND s.org_id = ? AND u.deleted_at IS NULL",
                [session_id, user_id, org_id])
            if row is None or row[2] != "active" or row[3] is not None:
                return None
            exp = db.read_ts(row[4])
            if exp is not None and exp < utcnow():
                return None
            perms, roles = await permissions_of(conn, org_id, user_id)
        auth_time = db.read_ts(row[5])
        amr = row[6] if isinstance(row[6], list) else loads(row[6]) if row[6] else ["pwd"]
        return Principal(user_id=user_id, org_id=org_id, kind="user", permissions=perms, session_id=session_id,
                         email=row[0], name=row[1], roles=roles,
                         auth_time=auth_time.timestamp() if auth_time else None, amr=tuple(amr))

    async def principal_for_api_key(self, db: Database, key_id: str, secret_hash: str) -> Principal | None:
        async with db.reader() as conn:
            row = await conn.fetchrow(
                "SELECT k.id, k.org_id, k.user_id, k.secret_hash, k.permissions, k.expires_at, k.revoked_at,"
                " u.status, u.email, u.name, k.last_used_at FROM identity_api_key k"
                " JOIN identity_user u ON u.id = k.user_id"
                " WHERE k.prefix = ? AND k.deleted_at IS NULL AND u.deleted_at IS NULL", [key_id])
            if row is None or not secrets.compare_digest(row[3], secret_hash):
                return None
            kid, org_id, user_id, _, key_perms, expires_at, revoked_at, status, email, name, last_used = row
            now = utcnow()
            exp = db.read_ts(expires_at)
            if revoked_at is not None or status != "active" or (exp is not None and exp < now):
                return None
            user_perms, roles = await permissions_of(conn, org_id, user_id)
        if isinstance(key_perms, str):
            key_perms = loads(key_perms)
        if key_perms:
            # A key never exceeds its owner: keep only what the owner still holds.
            probe_owner = Principal(user_id, org_id, "user", user_perms)
            perms = frozenset(p for p in key_perms if _holds(probe_owner, p))
        else:
            perms = user_perms
        last = db.read_ts(last_used)
        if last is None or (now - last).total_seconds() > 60:
            # Throttled so that a busy key does not turn every read into a write.
            async with db.transaction() as conn:
                await conn.execute("UPDATE identity_api_key SET last_used_at = ? WHERE id = ?", [db.ts(now), kid])
        return Principal(user_id=user_id, org_id=org_id, kind="api_key", permissions=perms, api_key_id=kid,
                         email=email, name=name, roles=roles)
