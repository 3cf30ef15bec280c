"""LDAP / Active Directory: per-org connections, sync of users and groups, and sign-in by bind.

ldap3 is synchronous, so every directory conversation runs in a worker thread; the database
work that follows runs in one unit of work per sync. Every value from a user that reaches an
LDAP filter is escaped (RFC 4515) with ldap3's escape_filter_chars; sign-in binds as the DN
the directory returned, never as a DN built from what the user typed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter
from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPInvalidFilterError
from ldap3.operation.search import parse_filter
from ldap3.utils.conv import escape_filter_chars

from nexus.kernel.context import Context, system_context
from nexus.kernel.crypto import SecretBox
from nexus.kernel.errors import Problem, validation
from nexus.kernel.jsonutil import loads, utcnow
from nexus.kernel.records import TableSpec, UnitOfWork
from nexus.kernel.resources import RecordService

from .. import service as identity
from . import models
from . import service as directory

log = logging.getLogger("nexus.identity.ldap")

CONNECTION = TableSpec(models.LdapConnection)
SYNC_JOB = "identity.ldap.sync"
TICK_JOB = "identity.ldap.tick"
TIMEOUT = 10  # seconds for connecting and for each answer

DEFAULT_ATTRIBUTES = {
    "username": "uid", "email": "mail", "name": "cn", "given_name": "givenName", "family_name": "sn",
    "group_name": "cn", "member": "member", "change_marker": "modifyTimestamp",
}
AD_ATTRIBUTES = {"username": "sAMAccountName", "name": "displayName", "change_marker": "uSNChanged"}
AD_DISABLED_BIT = 0x2  # userAccountControl ACCOUNTDISABLE

@dataclass
class _Runtime:
    box: SecretBox
    jobs: Any


# Per installation (keyed by its database), so that several NEXUS instances in one process —
# tests, the CLI — each seal with their own NEXUS_SECRET_KEY and queue on their own queue.
_runtimes: weakref.WeakKeyDictionary[Any, _Runtime] = weakref.WeakKeyDictionary()


def _runtime(db: Any) -> _Runtime:
    rt = _runtimes.get(db)
    if rt is None:
        raise RuntimeError("identity.directory.setup() was not run for this installation")
    return rt


def _seal(db: Any, value: str) -> str:
    return _runtime(db).box.seal(value)


def _with_password(db: Any, conn: dict[str, Any]) -> dict[str, Any]:
    """The connection as the directory code needs it: with the service password opened."""
    out = dict(conn)
    sealed = out.pop("bind_secret", None)
    out["bind_plain"] = _runtime(db).box.open(sealed) if sealed else ""
    return out


def attribute_map(conn: dict[str, Any]) -> dict[str, str]:
    raw = conn.get("attributes") or {}
    if isinstance(raw, str):
        raw = loads(raw)
    out = dict(DEFAULT_ATTRIBUTES)
    if str(conn.get("disabled_attribute") or "").lower() == "useraccountcontrol":
        out.update(AD_ATTRIBUTES)
    out.update(raw)
    return out


# -- the directory side (runs in a thread) -------------------------------------------------


@dataclass
class Entry:
    dn: str
    attrs: dict[str, list[str]]

    def first(self, name: str) -> str | None:
        for k, v in self.attrs.items():
            if k.lower() == name.lower() and v:
                return v[0]
        return None

    def all(self, name: str) -> list[str]:
        for k, v in self.attrs.items():
            if k.lower() == name.lower():
                return v
        return []


@dataclass
class Snapshot:
    changed_users: list[Entry] = field(default_factory=list)
    all_user_dns: set[str] = field(default_factory=set)
    groups: list[Entry] = field(default_factory=list)
    highwater: str | None = None
    incremental: bool = False


class DirectoryError(Exception):
    pass


def _open(conn: dict[str, Any], user: str | None = None, password: str | None = None) -> Connection:
    tls = Tls(validate=ssl.CERT_REQUIRED) if conn["url"].startswith("ldaps") or conn.get("start_tls") else None
    server = Server(conn["url"], connect_timeout=TIMEOUT, get_info=NONE, tls=tls)
    if user is None:
        user, password = conn.get("bind_dn") or None, conn.get("bind_plain") or None
    c = Connection(server, user=user, password=password, receive_timeout=TIMEOUT, raise_exceptions=False,
                   read_only=True, auto_referrals=False)
    try:
        c.open()
        if conn.get("start_tls") and not c.start_tls():
            raise DirectoryError(f"StartTLS failed: {c.result.get('description')}")
        if not c.bind():
            raise DirectoryError(f"bind failed: {c.result.get('description')} {c.result.get('message') or ''}".strip())
    except LDAPException as exc:
        raise DirectoryError(f"{type(exc).__name__}: {exc}") from None
    return c


def _search(c: Connection, base: str, flt: str, attrs: list[str], scope: Any = SUBTREE) -> list[Entry]:
    try:
        rows = c.extend.standard.paged_search(base, flt, search_scope=scope, attributes=attrs, paged_size=500,
                                              generator=False)
    except LDAPException as exc:
        raise DirectoryError(f"search of {base} failed: {exc}") from None
    if c.result.get("result") not in (0, None) and c.result.get("description") not in ("success", "noSuchObject"):
        raise DirectoryError(f"search of {base} failed: {c.result.get('description')}")
    out = []
    for r in rows or []:
        if r.get("type") != "searchResEntry":
            continue
        raw = r.get("raw_attributes") or {}
        attrs_out = {k: [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in vals]
                     for k, vals in raw.items()}
        out.append(Entry(r["dn"], attrs_out))
    return out


def fetch(conn: dict[str, Any], full: bool) -> Snapshot:
    """Read what changed since the last pass (everything when `full`), every user's DN (to find
    those who left), and the groups."""
    amap = attribute_map(conn)
    marker = amap["change_marker"]
    wanted = sorted({amap[k] for k in ("username", "email", "name", "given_name", "family_name")} | {marker}
                    | ({conn["disabled_attribute"]} if conn.get("disabled_attribute") else set()))
    snap = Snapshot()
    c = _open(conn)
    try:
        user_filter = conn["user_filter"]
        hw = conn.get("highwater")
        flt = user_filter
        if hw and not full:
            snap.incremental = True
            value = str(int(hw) + 1) if marker.lower() == "usnchanged" else hw
            flt = f"(&{user_filter}({marker}>={escape_filter_chars(value)}))"
        snap.changed_users = _search(c, conn["user_base_dn"], flt, wanted)
        snap.all_user_dns = {e.dn.lower() for e in _search(c, conn["user_base_dn"], user_filter, ["1.1"])}
        marks = [m for e in snap.changed_users if (m := e.first(marker))]
        if marks:
            top = max(marks, key=lambda m: int(m) if m.isdigit() else 0) if marker.lower() == "usnchanged" \
                else max(marks)
            snap.highwater = top if not hw else max(top, hw, key=lambda m: (len(m), m))
        else:
            snap.highwater = hw
        if conn.get("group_base_dn"):
            snap.groups = _search(c, conn["group_base_dn"], conn["group_filter"],
                                  [amap["group_name"], amap["member"], "uniqueMember"])
    finally:
        c.unbind()
    return snap


def test_connection(conn: dict[str, Any]) -> dict[str, Any]:
    """Bind with the service account and count the users and groups the filters find."""
    try:
        c = _open(conn)
    except DirectoryError as exc:
        return {"ok": False, "detail": str(exc)}
    try:
        users = len(_search(c, conn["user_base_dn"], conn["user_filter"], ["1.1"]))
        groups = len(_search(c, conn["group_base_dn"], conn["group_filter"], ["1.1"])) \
            if conn.get("group_base_dn") else 0
    except DirectoryError as exc:
        return {"ok": False, "detail": str(exc)}
    finally:
        c.unbind()
    return {"ok": True, "detail": f"Bound and found {users} users and {groups} groups.", "users": users,
            "groups": groups}


def find_sign_in(conn: dict[str, Any], login: str) -> Entry | None:
    """The one directory user whose username or email is `login` (escaped: a `*` or `)` in a
    sign-in name is a literal character, not a filter)."""
    amap = attribute_map(conn)
    v = escape_filter_chars(login)
    flt = f"(&{conn['user_filter']}(|({amap['username']}={v})({amap['email']}={v})))"
    c = _open(conn)
    try:
        found = _search(c, conn["user_base_dn"], flt, sorted({amap[k] for k in (
            "username", "email", "name", "given_name", "family_name")} | (
            {conn["disabled_attribute"]} if conn.get("disabled_attribute") else set())))
    finally:
        c.unbind()
    return found[0] if len(found) == 1 else None


def bind_as(conn: dict[str, Any], dn: str, password: str) -> bool:
    """Whether `password` is the directory password of `dn` (a simple bind as that DN, then a
    read of the entry through the same filter, so a user the filter no longer selects fails)."""
    if not password:
        return False  # an empty password is an unauthenticated bind (RFC 4513 §5.1.2), never a sign-in
    try:
        c = _open(conn, dn, password)
    except DirectoryError:
        return False
    try:
        return bool(_search(c, dn, conn["user_filter"], ["1.1"], scope=BASE))
    except DirectoryError:
        return False
    finally:
        c.unbind()


def is_disabled(conn: dict[str, Any], entry: Entry) -> bool:
    attr = conn.get("disabled_attribute") or ""
    if not attr:
        return False
    value = entry.first(attr)
    if attr.lower() == "useraccountcontrol":
        try:
            return bool(int(value or "0") & AD_DISABLED_BIT)
        except ValueError:
            return False
    wanted = conn.get("disabled_value") or ""
    if not wanted:
        return value is not None  # the attribute's presence marks it (pwdAccountLockedTime…)
    return any(v.lower() == wanted.lower() for v in entry.all(attr))


# -- NEXUS side ------------------------------------------------------------------------------


def _json(raw: Any) -> Any:
    return loads(raw) if isinstance(raw, str) else raw


async def load_connection(db: Any, org_id: str, conn_id: str) -> dict[str, Any] | None:
    async with db.reader() as c:
        row = await c.fetchrow(f"SELECT {CONNECTION.select_list} FROM identity_ldap_connection"
                               " WHERE org_id = ? AND id = ? AND deleted_at IS NULL", [org_id, conn_id])
    return None if row is None else _with_password(db, CONNECTION.to_dict(db.dialect, row))


def _profile(conn: dict[str, Any], e: Entry) -> dict[str, Any]:
    amap = attribute_map(conn)
    username = e.first(amap["username"]) or ""
    email = (e.first(amap["email"]) or "").strip().lower()
    given, family = e.first(amap["given_name"]), e.first(amap["family_name"])
    name = e.first(amap["name"]) or " ".join(p for p in (given, family) if p) or username
    return {"username": username, "email": email, "name": name[:200], "given_name": given, "family_name": family,
            "disabled": is_disabled(conn, e)}


async def upsert_user(uow: UnitOfWork, conn: dict[str, Any], e: Entry, stats: dict[str, int]) -> str | None:
    """Create, link or update the NEXUS user for a directory entry; returns the user id."""
    p = _profile(conn, e)
    if not p["username"] or not identity_email(p["email"]):
        stats["skipped"] += 1
        return None
    users = identity.UserService.instance()
    row = await uow.conn.fetchrow(
        "SELECT id FROM identity_directory_account WHERE org_id = ? AND source = 'ldap' AND connection_id = ?"
        " AND (dn = ? OR user_name_ci = ?)", [uow.ctx.org_id, conn["id"], e.dn, p["username"].lower()])
    data = {k: p[k] for k in ("email", "given_name", "family_name")}
    if row is None:
        existing = await uow.find(identity.USER, {"email": p["email"]}, include_deleted=True)
        if existing and await uow.get(directory.ACCOUNT, existing[0]["id"]) is not None:
            stats["skipped"] += 1  # another directory manages this address
            return None
        if existing:
            uid = existing[0]["id"]
            if existing[0]["deleted_at"] is not None:
                await users.restore(uow, uid)
            uow.audit("identity", "users", uid, "directory_linked", None, {"source": "ldap", "dn": e.dn})
            stats["linked"] += 1
        else:
            roles = [r for r in _json(conn.get("default_roles")) or ["member"]]
            live = {r["name"] for r in await uow.find(identity.ROLE, {})}
            record = await users.create(uow, {"email": p["email"], "name": p["name"], "password": None,
                                              "roles": [r for r in roles if r in live], "timezone": "UTC"})
            uid = record["id"]
            # Directory users sign in with their directory password: active, not invited.
            await users.change(uow, record, {"status": "active"}, "directory_activated")
            stats["created"] += 1
        await uow.insert(directory.ACCOUNT, {
            "id": uid, "source": "ldap", "connection_id": conn["id"], "user_name": p["username"],
            "user_name_ci": p["username"].lower(), "dn": e.dn, "data": data, "granted_roles": [],
            "last_seen_at": uow.now})
    else:
        uid = row[0]
        acct = await uow.require(directory.ACCOUNT, uid)
        record = await uow.require(identity.USER, uid)
        changes = {k: v for k, v in (("name", p["name"]), ("email", p["email"])) if record.get(k) != v}
        if "email" in changes:
            clash = await uow.find(identity.USER, {"email": p["email"]}, include_deleted=True)
            if clash and clash[0]["id"] != uid:
                changes.pop("email")
                stats["skipped"] += 1
        if changes:
            await users.update(uow, uid, changes)
            stats["updated"] += 1
        await uow.update(directory.ACCOUNT, uid, {"dn": e.dn, "user_name": p["username"],
                                                  "user_name_ci": p["username"].lower(),
                                                  "data": {**(acct["data"] or {}), **data}, "last_seen_at": uow.now})
    await _apply_enabled(uow, uid, not p["disabled"], stats)
    return uid


def identity_email(value: str) -> bool:
    import re

    return bool(value) and len(value) <= 320 and re.match(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", value) is not None


async def _apply_enabled(uow: UnitOfWork, uid: str, enabled: bool, stats: dict[str, int]) -> None:
    """Disabled in the directory → deactivated here; enabled again → reactivated, but only when
    the directory was what deactivated them (an admin's deactivation stands)."""
    users = identity.UserService.instance()
    record = await uow.require(identity.USER, uid)
    acct = await uow.require(directory.ACCOUNT, uid)
    data = dict(acct["data"] or {})
    if not enabled and record["status"] != "deactivated":
        await users.deactivate(uow, record, None)
        data["deactivated_by_directory"] = True
        stats["deactivated"] += 1
    elif enabled and record["status"] == "deactivated" and data.get("deactivated_by_directory"):
        await users.reactivate(uow, record, None)
        data.pop("deactivated_by_directory", None)
        stats["reactivated"] += 1
        record = await uow.require(identity.USER, uid)
        if record["status"] == "invited":
            await users.change(uow, record, {"status": "active"}, "directory_activated")
    else:
        return
    await uow.conn.execute("UPDATE identity_directory_account SET data = ? WHERE id = ?", [uow.db.json(data), uid])


async def sync(nx: Any, org_id: str, conn_id: str, *, full: bool = False) -> dict[str, Any]:
    """One sync pass; records its outcome on the connection (also when it fails)."""
    db = nx.db
    conn = await load_connection(db, org_id, conn_id)
    if conn is None:
        raise Problem(404, "No such LDAP connection.")
    started = utcnow()
    try:
        snap = await asyncio.to_thread(fetch, conn, full or not conn.get("highwater"))
    except DirectoryError as exc:
        result = {"ok": False, "error": str(exc)[:500], "started_at": started.isoformat()}
        await _record(db, org_id, conn_id, "failed", result, None)
        return result
    stats = {"created": 0, "linked": 0, "updated": 0, "deactivated": 0, "reactivated": 0, "skipped": 0,
             "groups": 0, "memberships_changed": 0}
    ctx = system_context(org_id)
    async with UnitOfWork(db, Context(ctx.principal, None, None)) as uow:
        for e in snap.changed_users:
            await upsert_user(uow, conn, e, stats)
        # Users gone from the directory (or no longer selected by the filter) are deactivated.
        for uid, dn in await uow.conn.fetch(
                "SELECT id, dn FROM identity_directory_account WHERE org_id = ? AND source = 'ldap'"
                " AND connection_id = ?", [org_id, conn_id]):
            if (dn or "").lower() not in snap.all_user_dns:
                await _apply_enabled(uow, uid, False, stats)
        await _sync_groups(uow, conn, snap, stats)
        result = {"ok": True, "incremental": snap.incremental, "users_changed": len(snap.changed_users),
                  "users_in_directory": len(snap.all_user_dns), **stats, "started_at": started.isoformat()}
        uow.audit("identity", "ldap-connections", conn_id, "synced", None, result)
    await _record(db, org_id, conn_id, "ok", result, snap.highwater)
    return result


async def _sync_groups(uow: UnitOfWork, conn: dict[str, Any], snap: Snapshot, stats: dict[str, int]) -> None:
    if not conn.get("group_base_dn"):
        return
    amap = attribute_map(conn)
    mapping = {k.lower(): v for k, v in (_json(conn.get("group_roles")) or {}).items()}
    by_dn = {(dn or "").lower(): uid for uid, dn in await uow.conn.fetch(
        "SELECT id, dn FROM identity_directory_account WHERE org_id = ? AND source = 'ldap' AND connection_id = ?",
        [uow.ctx.org_id, conn["id"]])}
    existing = {(g["dn"] or "").lower(): g for g in await uow.find(directory.GROUP, {"source": "ldap",
                                                                                    "connection_id": conn["id"]})}
    groups = directory.DirectoryGroupService.instance()
    seen = set()
    for g in snap.groups:
        key = g.dn.lower()
        seen.add(key)
        name = (g.first(amap["group_name"]) or g.dn)[:500]
        roles = mapping.get(key) or mapping.get(name.lower()) or []
        current = existing.get(key)
        values = {"display_name": name, "display_name_ci": name.lower(), "roles": roles, "dn": g.dn}
        if current is None:
            record = await uow.insert(directory.GROUP, {"source": "ldap", "connection_id": conn["id"], "data": {},
                                                        "member_count": 0, **values})
            groups.record_change(uow, "created", None, record)
            gid = record["id"]
        else:
            gid = current["id"]
            if any(current.get(k) != v for k, v in values.items()):
                before, after = await uow.update(directory.GROUP, gid, values)
                groups.record_change(uow, "updated", before, after)
                if before["roles"] != after["roles"]:
                    await directory.refresh_roles(uow, await directory.member_ids(uow, gid))
        members = [by_dn[m.lower()] for m in [*g.all(amap["member"]), *g.all("uniqueMember")] if m.lower() in by_dn]
        changed = await directory.set_members(uow, gid, list(dict.fromkeys(members)))
        if changed:
            stats["memberships_changed"] += len(changed)
            await directory.refresh_roles(uow, changed)
        stats["groups"] += 1
    for key, gone in existing.items():
        if key not in seen:
            await groups.delete(uow, gone["id"])  # its before_delete takes its roles away


async def _record(db: Any, org_id: str, conn_id: str, status: str, result: dict[str, Any],
                  highwater: str | None) -> None:
    async with UnitOfWork(db, system_context(org_id)) as uow:
        conn = await uow.get(CONNECTION, conn_id)
        if conn is None:
            return
        changes: dict[str, Any] = {"last_sync_at": uow.now, "last_sync_status": status, "last_sync_result": result}
        if highwater is not None:
            changes["highwater"] = highwater
        await uow.update(CONNECTION, conn_id, changes)
        if status != "ok":
            uow.audit("identity", "ldap-connections", conn_id, "sync_failed", None, result)


# -- sign-in by bind -------------------------------------------------------------------------


class LdapSignIn:
    """Plugged into identity's SignIn: directory users prove their password by an LDAP bind."""

    def __init__(self, nx: Any) -> None:
        self.nx = nx

    async def check_password(self, org_id: str, user_id: str, password: str) -> bool | None:
        """True/False for a user an LDAP connection with sign-in manages; None for anyone else."""
        db = self.nx.db
        async with db.reader() as c:
            row = await c.fetchrow(
                "SELECT d.dn, d.connection_id FROM identity_directory_account d WHERE d.org_id = ? AND d.id = ?"
                " AND d.source = 'ldap'", [org_id, user_id])
        if row is None or not row[0]:
            return None
        conn = await load_connection(db, org_id, row[1])
        if conn is None or not conn["sign_in"] or not conn["enabled"]:
            return None
        return await asyncio.to_thread(bind_as, conn, row[0], password)

    async def provision(self, login: str, password: str, org_slug: str | None) -> str | None:
        """A directory user signing in before the first sync: found by username or email
        (escaped), proven by bind, then created like a sync would. Returns their email."""
        db = self.nx.db
        async with db.reader() as c:
            sql = ("SELECT l.id, l.org_id FROM identity_ldap_connection l JOIN identity_org o ON o.id = l.org_id"
                   " WHERE l.deleted_at IS NULL AND l.enabled = ? AND l.sign_in = ?")
            args: list[Any] = [True, True]
            if org_slug:
                sql += " AND o.slug = ?"
                args.append(org_slug)
            rows = await c.fetch(sql + " ORDER BY l.created_at", args)
            if not rows:
                return None
            # A username (no @) names the directory account, which the database answers.
            if "@" not in login:
                known = await c.fetchrow(
                    "SELECT u.email FROM identity_directory_account d JOIN identity_user u ON u.id = d.id"
                    " WHERE d.source = 'ldap' AND d.user_name_ci = ? AND u.deleted_at IS NULL"
                    + (" AND d.org_id IN (" + ",".join("?" * len(rows)) + ")"), [login.lower(), *[r[1] for r in rows]])
                if known is not None:
                    return str(known[0])
        if len({r[1] for r in rows}) > 1:
            return None  # several orgs: the caller must say which (org=…)
        for conn_id, org_id in rows:
            conn = await load_connection(db, org_id, conn_id)
            if conn is None:
                continue
            try:
                entry = await asyncio.to_thread(find_sign_in, conn, login)
            except DirectoryError as exc:
                log.warning("directory unavailable for sign-in", extra={"fields": {"connection": conn_id,
                                                                                  "error": str(exc)[:200]}})
                continue
            if entry is None or is_disabled(conn, entry):
                await _refused(db, org_id, login, "not in the directory" if entry is None else "disabled in the directory")
                continue
            if not await asyncio.to_thread(bind_as, conn, entry.dn, password):
                await _refused(db, org_id, login, "wrong directory password")
                return None
            stats = {k: 0 for k in ("created", "linked", "updated", "deactivated", "reactivated", "skipped")}
            async with UnitOfWork(db, system_context(org_id)) as uow:
                uid = await upsert_user(uow, conn, entry, stats)
                if uid is None:
                    return None
                uow.audit("identity", "users", uid, "directory_provisioned", None, {"source": "ldap", "dn": entry.dn})
                user = await uow.require(identity.USER, uid)
            return str(user["email"])
        return None


async def _refused(db: Any, org_id: str, login: str, reason: str) -> None:
    """The org is known here (it has the directory), so the attempt is filed under it: a probe
    with `*` or `)(` in the name shows up in the audit trail, not only in a counter."""
    from nexus.kernel.context import request_id_var

    ctx = Context(system_context(org_id).principal, request_id_var.get(), None)
    async with UnitOfWork(db, ctx) as uow:
        uow.audit("identity", "users", None, "sign_in_failed", None,
                  {"login": login[:320], "reason": reason, "source": "ldap"})


# -- admin resource --------------------------------------------------------------------------


def _valid_filter(value: str, pointer: str) -> None:
    try:
        parse_filter(value, None, auto_escape=False, auto_encode=False, validator=None, check_names=False)
    except (LDAPInvalidFilterError, LDAPException, ValueError, IndexError) as exc:
        raise validation([{"pointer": pointer, "detail": f"not an LDAP filter: {exc}"}]) from None
    if not (value.startswith("(") and value.endswith(")")):
        raise validation([{"pointer": pointer, "detail": "an LDAP filter is enclosed in parentheses"}])


def _next_run(cron: str, now: datetime) -> datetime | None:
    if not cron:
        return None
    return croniter(cron, now.astimezone(UTC)).get_next(datetime)


class LdapConnectionService(RecordService):
    async def _validate(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        for key in ("user_filter", "group_filter"):
            if values.get(key):
                _valid_filter(values[key], f"/{key}")
        if values.get("schedule"):
            if not croniter.is_valid(values["schedule"]):
                raise validation([{"pointer": "/schedule", "detail": "not a cron expression"}])
            values["next_sync_at"] = _next_run(values["schedule"], uow.now)
        elif "schedule" in values:
            values["next_sync_at"] = None
        roles = set(values.get("default_roles") or [])
        for names in (values.get("group_roles") or {}).values():
            roles.update(names)
        if roles:
            await directory._check_roles(uow, sorted(roles), "/group_roles")
        unknown = set(values.get("attributes") or {}) - set(DEFAULT_ATTRIBUTES)
        if unknown:
            raise validation([{"pointer": "/attributes", "detail": f"unknown keys: {', '.join(sorted(unknown))}"}])
        if "bind_password" in values:
            # Write-only: sealed into bind_secret, never stored or shown as typed.
            plain = values.pop("bind_password")
            if plain:
                values["bind_secret"] = _seal(uow.db, plain)

    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        await self._validate(uow, values)

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if "bind_password" in changes and not changes["bind_password"]:
            changes.pop("bind_password")  # not given: keep the stored one
        await self._validate(uow, changes)
        if any(k in changes for k in ("url", "user_base_dn", "user_filter", "attributes", "disabled_attribute")):
            changes["highwater"] = None  # what was read before no longer says what changed since

    async def test(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        full = _with_password(uow.db, await uow.require(CONNECTION, record["id"]))
        outcome = await asyncio.to_thread(test_connection, full)
        out = await self.change(uow, record, {"last_test_at": uow.now, "last_test_result": outcome}, "tested")
        out["test"] = outcome
        return out

    async def sync(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        jobs = _runtime(uow.db).jobs
        if jobs is None:
            raise Problem(503, "This installation runs no background jobs; sync cannot be queued.")
        await jobs.enqueue_in(uow, SYNC_JOB, {"connection_id": record["id"], "full": bool(body and body.full)},
                              unique_key=f"ldap:{record['id']}")
        return await self.change(uow, record, {"last_sync_status": "queued"}, "sync_requested")


async def sync_job(ctx: Any, payload: dict[str, Any]) -> None:
    await sync(ctx.nexus, ctx.org_id or payload["org_id"], payload["connection_id"], full=bool(payload.get("full")))


async def tick_job(ctx: Any, payload: dict[str, Any]) -> None:
    """Every minute: queue a sync for each connection whose own schedule is due."""
    nx = ctx.nexus
    db = nx.db
    now = utcnow()
    async with db.reader() as c:
        rows = await c.fetch("SELECT id, org_id, schedule FROM identity_ldap_connection WHERE deleted_at IS NULL"
                             " AND enabled = ? AND next_sync_at IS NOT NULL AND next_sync_at <= ?", [True, db.ts(now)])
    for conn_id, org_id, cron in rows:
        async with db.transaction() as tx:
            await tx.execute("UPDATE identity_ldap_connection SET next_sync_at = ? WHERE id = ?",
                             [db.ts(_next_run(cron, now)) if cron else None, conn_id])
        await _runtime(db).jobs.enqueue(SYNC_JOB, {"connection_id": conn_id, "org_id": org_id}, org_id=org_id,
                            unique_key=f"ldap:{conn_id}")


def install(nx: Any) -> None:
    jobs = nx.state.get("jobs")
    _runtimes[nx.db] = _Runtime(SecretBox(nx.settings.secret_key, "identity.ldap-bind-password"), jobs)
    if jobs is not None and SYNC_JOB not in jobs.types:
        jobs.register(SYNC_JOB, sync_job, max_attempts=3, timeout=1800)
        jobs.register(TICK_JOB, tick_job, max_attempts=1, timeout=120)
        jobs.schedule(TICK_JOB, "* * * * *", TICK_JOB)
