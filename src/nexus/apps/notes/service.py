"""Notes rules: sanitised rich text, version history, sharing, pinning."""

from __future__ import annotations

import html
import re
from typing import Any

import nh3

from nexus.kernel.errors import Problem, validation
from nexus.kernel.ids import new_id
from nexus.kernel.permissions import has_permission
from nexus.kernel.records import TableSpec, UnitOfWork
from nexus.kernel.resources import RecordService

from . import models

NOTE = TableSpec(models.Note)
VERSION = TableSpec(models.NoteVersion)

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "b", "em", "i", "u", "s", "del", "mark", "sub", "sup", "code", "pre", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
    "span", "div", "input",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "input": {"type", "checked", "disabled"},  # task-list checkboxes
    "code": {"class"},
    "span": {"class"},
    "div": {"class"},
    "ol": {"start"},
}
_WS = re.compile(r"\s+")


def sanitize(fragment: str) -> str:
    """Pasted HTML keeps its formatting and loses scripts, handlers, styles and unsafe URLs (nh3/Ammonia)."""
    return nh3.clean(fragment, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow",
                     strip_comments=True)


def plain_text(fragment: str) -> str:
    spaced = re.sub(r"<(br|/p|/div|/li|/h[1-6]|/tr|/blockquote)\b[^>]*>", " \n", fragment, flags=re.I)
    return _WS.sub(" ", html.unescape(nh3.clean(spaced, tags=set()))).strip()


def owner_or_admin(uow: UnitOfWork, record: dict[str, Any],
                   refusal: str = "Only the note's owner can change who it is shared with.") -> None:
    p = uow.ctx.principal
    if record["created_by"] != p.user_id and not has_permission(p, "notes.notes.all"):
        raise Problem(403, refusal)


class NoteService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        values["body"] = sanitize(values.get("body") or "")
        values["body_text"] = plain_text(values["body"])
        values["tags"] = list(dict.fromkeys(values.get("tags") or []))

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if "body" in changes:
            changes["body"] = sanitize(changes["body"] or "")
            changes["body_text"] = plain_text(changes["body"])
        if "tags" in changes:
            changes["tags"] = list(dict.fromkeys(changes["tags"] or []))
        if "visibility" in changes and changes["visibility"] != before["visibility"]:
            owner_or_admin(uow, before)
        content = ("title", "body", "tags")
        if any(k in changes and changes[k] != before[k] for k in content):
            await self.save_version(uow, before)

    async def save_version(self, uow: UnitOfWork, note: dict[str, Any]) -> None:
        await uow.write(
            "INSERT INTO notes_version (id, org_id, note_id, version, title, body, tags, saved_at, saved_by)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            [new_id(), uow.ctx.org_id, note["id"], note["version"], note["title"], note["body"],
             uow.db.json(note["tags"]), uow.db.ts(uow.now), uow.ctx.user_id])

    # -- actions ----------------------------------------------------------------------------
    async def pin(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        return record if record["pinned"] else await self.change(uow, record, {"pinned": True}, "pinned")

    async def unpin(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        return record if not record["pinned"] else await self.change(uow, record, {"pinned": False}, "unpinned")

    async def share(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        owner_or_admin(uow, record)
        if body.user_id == record["created_by"]:
            raise validation([{"pointer": "/user_id", "detail": "the owner already has the note"}])
        users = self.references_resolver("identity.users") if self.references_resolver else None
        if users is None or not await uow.exists(users, body.user_id):
            raise validation([{"pointer": "/user_id", "detail": "no such user in this org"}])
        await uow.conn.execute("DELETE FROM notes_share WHERE org_id = ? AND note_id = ? AND user_id = ?",
                               [uow.ctx.org_id, record["id"], body.user_id])
        await uow.conn.execute(
            "INSERT INTO notes_share (org_id, note_id, user_id, access, created_at) VALUES (?,?,?,?,?)",
            [uow.ctx.org_id, record["id"], body.user_id, body.access, uow.db.ts(uow.now)])
        await uow.notify(body.user_id, "notes.shared", f"A note was shared with you: {record['title']}",
                         f"You can {'edit' if body.access == 'edit' else 'read'} it.", f"/notes/notes/{record['id']}")
        shared = sorted({*record.get("shared_with", []), body.user_id})
        return await self.change(uow, record, {"shared_with": shared}, "shared")

    async def unshare(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        owner_or_admin(uow, record)
        n = await uow.conn.execute("DELETE FROM notes_share WHERE org_id = ? AND note_id = ? AND user_id = ?",
                                   [uow.ctx.org_id, record["id"], body.user_id])
        if not n:
            return record
        shared = [u for u in record.get("shared_with", []) if u != body.user_id]
        return await self.change(uow, record, {"shared_with": shared}, "unshared")

    async def restore_version(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        rows = await uow.find(VERSION, {"note_id": record["id"], "version": body.version})
        if not rows:
            raise Problem(404, f"The note has no version {body.version}.")
        old = rows[0]
        await self.save_version(uow, record)
        return await self.change(uow, record, {"title": old["title"], "body": old["body"],
                                               "body_text": plain_text(old["body"]), "tags": old["tags"]},
                                 "version_restored")


class NotebookService(RecordService):
    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        if await uow.find(NOTE, {"notebook_id": record["id"]}, limit=1):
            raise Problem(409, "The notebook still has notes; move or delete them first.")
