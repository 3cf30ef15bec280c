"""Directory use cases shared by SCIM and LDAP: tokens, groups and the roles they grant."""

from __future__ import annotations

import secrets
from typing import Any

from nexus.kernel.auth import hash_secret
from nexus.kernel.errors import Problem, validation
from nexus.kernel.permissions import has_permission
from nexus.kernel.records import TableSpec, UnitOfWork
from nexus.kernel.resources import RecordService

from .. import service as identity
from . import models

SCIM_TOKEN_PREFIX = "nxscim_"
TOKEN = TableSpec(models.ScimToken, hidden=("secret_hash",))
ACCOUNT = TableSpec(models.DirectoryAccount)
GROUP = TableSpec(models.DirectoryGroup)


async def _check_roles(uow: UnitOfWork, names: list[str], pointer: str) -> None:
    """Roles named in a mapping exist, and the admin setting it holds what they grant."""
    roles = {r["name"]: r for r in await uow.find(identity.ROLE, {})}
    missing = [n for n in names if n not in roles]
    if missing:
        raise validation([{"pointer": pointer, "detail": f"no such role: {', '.join(missing)}"}])
    p = uow.ctx.principal
    if "owner" in names and p.kind != "system" and "owner" not in p.roles:
        raise Problem(403, "Only an owner can map a directory to the owner role.")
    for n in names:
        identity._no_escalation(p, roles[n]["permissions"], f"the role {n!r}")


class ScimTokenService(RecordService):
    async def create(self, uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
        roles = list(dict.fromkeys(values.get("default_roles") or ["member"]))
        await _check_roles(uow, roles, "/default_roles")
        if not has_permission(uow.ctx.principal, "identity.users.update"):
            raise Problem(403, "A SCIM token acts with its issuer's authority: you need identity.users.update.")
        prefix = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = await uow.insert(TOKEN, {
            "name": values["name"], "prefix": prefix, "secret_hash": hash_secret(secret),
            "default_roles": roles, "expires_at": identity._future(values.get("expires_at"), uow.now),
        })
        self.record_change(uow, "created", None, record)
        shown = dict(record)
        shown["token"] = f"{SCIM_TOKEN_PREFIX}{prefix}_{secret}"  # shown once, stored only hashed
        return shown

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if changes.get("default_roles") is not None:
            changes["default_roles"] = list(dict.fromkeys(changes["default_roles"]))
            await _check_roles(uow, changes["default_roles"], "/default_roles")
        if changes.get("expires_at") is not None:
            changes["expires_at"] = identity._future(changes["expires_at"], uow.now)

    async def revoke(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["revoked_at"] is not None:
            return record
        return await self.change(uow, record, {"revoked_at": uow.now}, "revoked")


class DirectoryGroupService(RecordService):
    """Admins map a directory group to NEXUS roles; its members hold them."""

    _instance: DirectoryGroupService | None = None

    def __init__(self, resource: Any) -> None:
        super().__init__(resource)
        DirectoryGroupService._instance = self

    @classmethod
    def instance(cls) -> DirectoryGroupService:
        assert cls._instance is not None
        return cls._instance

    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        values["roles"] = list(dict.fromkeys(values.get("roles") or []))
        await _check_roles(uow, values["roles"], "/roles")
        values["source"] = "nexus"
        values["display_name_ci"] = values["display_name"].lower()

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if "display_name" in changes and before["source"] != "nexus":
            raise Problem(409, "The directory owns this group's name; change it there.")
        if changes.get("display_name"):
            changes["display_name_ci"] = changes["display_name"].lower()
        if changes.get("roles") is not None:
            changes["roles"] = list(dict.fromkeys(changes["roles"]))
            await _check_roles(uow, changes["roles"], "/roles")

    async def after_update(self, uow: UnitOfWork, before: dict[str, Any], after: dict[str, Any]) -> None:
        if before.get("roles") != after.get("roles"):
            await refresh_roles(uow, await member_ids(uow, after["id"]))

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        members = await member_ids(uow, record["id"])
        await uow.conn.execute("DELETE FROM identity_directory_member WHERE org_id = ? AND group_id = ?",
                               [uow.ctx.org_id, record["id"]])
        await refresh_roles(uow, members)


async def member_ids(uow: UnitOfWork, group_id: str) -> list[str]:
    rows = await uow.conn.fetch("SELECT user_id FROM identity_directory_member WHERE org_id = ? AND group_id = ?"
                                " ORDER BY user_id", [uow.ctx.org_id, group_id])
    return [r[0] for r in rows]


async def set_members(uow: UnitOfWork, group_id: str, wanted: list[str],
                      display: dict[str, str | None] | None = None) -> list[str]:
    """Replace a group's members; returns the users whose membership changed. `display`
    keeps what a SCIM client calls each member (RFC 7643 §4.2: readWrite)."""
    current = set(await member_ids(uow, group_id))
    target = set(wanted)
    gone, new = sorted(current - target), sorted(target - current)
    org = uow.ctx.org_id
    for uid in gone:
        await uow.conn.execute("DELETE FROM identity_directory_member WHERE org_id = ? AND group_id = ? AND user_id = ?",
                               [org, group_id, uid])
    display = display or {}
    if new:
        await uow.conn.executemany(
            "INSERT INTO identity_directory_member (group_id, user_id, org_id, display) VALUES (?,?,?,?)",
            [(group_id, uid, org, display.get(uid)) for uid in new])
    for uid in sorted(target & current):
        if uid in display:
            await uow.conn.execute("UPDATE identity_directory_member SET display = ? WHERE group_id = ? AND user_id = ?",
                                   [display[uid], group_id, uid])
    if gone or new:
        await uow.conn.execute("UPDATE identity_directory_group SET member_count = ? WHERE org_id = ? AND id = ?",
                               [len(target), org, group_id])
    return gone + new


async def refresh_roles(uow: UnitOfWork, user_ids: list[str]) -> None:
    """Recompute the roles directory groups grant. Roles an admin gave by hand stay: only
    those the groups granted before (and the user did not hold otherwise) are taken away."""
    org = uow.ctx.org_id
    live_roles = {r["name"] for r in await uow.find(identity.ROLE, {})}
    for uid in dict.fromkeys(user_ids):
        acct = await uow.get(ACCOUNT, uid)
        if acct is None:
            continue  # a nested group, or a user no directory manages
        rows = await uow.conn.fetch(
            "SELECT g.roles FROM identity_directory_member m JOIN identity_directory_group g ON g.id = m.group_id"
            " WHERE m.org_id = ? AND m.user_id = ? AND g.deleted_at IS NULL", [org, uid])
        granted: set[str] = set()
        for (raw,) in rows:
            granted.update(n for n in _json_list(raw) if n in live_roles)
        current = set(await identity._role_names(uow, uid))
        manual = current - set(acct["granted_roles"] or [])
        final = sorted(manual | granted)
        if set(final) != current:
            names = await identity.set_roles(uow, uid, final)
            user = await uow.get(identity.USER, uid)
            if user is not None:
                await identity.UserService.instance().change(uow, user, {"roles": names}, "roles_assigned")
        await uow.conn.execute("UPDATE identity_directory_account SET granted_roles = ? WHERE id = ?",
                               [uow.db.json(sorted(granted - manual)), uid])


def _json_list(raw: Any) -> list[str]:
    if isinstance(raw, str):
        from nexus.kernel.jsonutil import loads

        raw = loads(raw)
    return list(raw or [])
