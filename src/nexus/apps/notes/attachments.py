"""Note attachments: files kept in the kernel blob store (kernel/blobs.py, ADR 0005).

Each attachment is a blob ref owned by the note: app "notes", resource "notes", record_id =
the note's id. The note's `attachments` column is a summary of those refs
([{id, filename, size, content_type, sha256}]), changed through the service's `change()` so
that every attach and removal is audited and emits an event.

Who may do what follows the note's record rule, not just the permission: anyone who can read
the note lists and downloads its attachments, anyone who can edit it attaches and removes
them, everyone else (another org included) gets 404.

Attachment ids are NOT the blob ref ids. The kernel's own download route
(GET /api/v1/blobs/{ref_id}) decides access to an app's ref by the permission
`notes.notes.read` alone, which every member holds, so a ref id would let someone who cannot
see the note (or who could until it was unshared) download the file there. The id we hand out
is a one-way digest of the ref id, so the ref id never leaves the server and attachments are
only reachable through the routes below, which check the note first.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.blobs import download, safe_filename, store_of
from nexus.kernel.errors import Problem, not_found
from nexus.kernel.http.app import nexus_of, read_body, require_json
from nexus.kernel.http.responses import json_response
from nexus.kernel.ids import is_id
from nexus.kernel.permissions import require
from nexus.kernel.records import UnitOfWork
from nexus.kernel.resources import pydantic_errors

from .resources import notes
from .schemas import AttachInput
from .service import owner_or_admin

if TYPE_CHECKING:
    from nexus.kernel.blobs import BlobStore
    from nexus.kernel.context import Principal

APP, RESOURCE = "notes", "notes"
MAX_ATTACHMENTS = 100  # per note
MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024  # at most this, and at most NEXUS_MAX_UPLOAD_BYTES
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def attachment_id(ref_id: str) -> str:
    """The public id of the attachment held by blob ref `ref_id`: 26 Crockford base32
    characters (an id like any other) of SHA-256("notes-attachment:" + ref id). One-way: the
    ref id has 80 random bits, so it cannot be recovered from this."""
    value = int.from_bytes(hashlib.sha256(b"notes-attachment:" + ref_id.encode()).digest()[:16], "big")
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def summary(ref: dict[str, Any]) -> dict[str, Any]:
    """What the note's `attachments` column keeps about one attachment."""
    return {"id": attachment_id(ref["id"]), "filename": ref["filename"], "size": ref["size"],
            "content_type": ref["content_type"], "sha256": ref["sha256"]}


def _public(note_id: str, ref: dict[str, Any]) -> dict[str, Any]:
    out = summary(ref)
    out.update(created_at=ref["created_at"], created_by=ref["created_by"],
               url=f"/api/v1/notes/notes/{note_id}/attachments/{out['id']}")
    return out


async def _note(req: Request, *, write: bool = False) -> tuple[Principal, dict[str, Any]]:
    """The live note of the path, as the caller may see it: 404 when they cannot see it
    (another org, private and not shared, deleted), 403 when `write` and they cannot edit it."""
    nx = nexus_of(req)
    p = await nx.principal(req)
    require(p, notes.permission("read"))
    note_id = req.path_params["id"]
    if not is_id(note_id):
        raise not_found("note")
    sql = f"SELECT {notes.spec.select_list} FROM notes_note WHERE org_id = ? AND id = ? AND deleted_at IS NULL"
    args: list[Any] = [p.org_id, note_id]
    read = notes.read_condition(p)
    if read is not None:
        sql += f" AND ({read[0]})"
        args += read[1]
    async with nx.db.reader() as conn:
        row = await conn.fetchrow(sql, args)
        if row is None:
            raise not_found("note")
        if write:
            require(p, notes.permission("update"))
            cond = notes.write_condition(p)
            if cond is not None and not await conn.fetchval(
                    f"SELECT 1 FROM notes_note WHERE org_id = ? AND id = ? AND ({cond[0]})",
                    [p.org_id, note_id, *cond[1]]):
                raise Problem(403, "You may see this note but not change it.")
    return p, notes.spec.to_dict(nx.db.dialect, row)


async def _ref(store: BlobStore, p: Principal, note_id: str, aid: str) -> dict[str, Any]:
    if is_id(aid):
        for ref in await store.refs_for(p.org_id, APP, RESOURCE, note_id):
            if attachment_id(ref["id"]) == aid:
                return ref
    raise not_found("attachment")


async def _locked_note(uow: UnitOfWork, note_id: str) -> dict[str, Any]:
    """The note, re-read inside the unit of work and locked (PostgreSQL) so that two
    attachments added at once both land in the summary instead of one getting a 412
    (`require` reads FOR UPDATE; SQLite's transaction holds the writer lock)."""
    return await uow.require(notes.spec, note_id, what="note")


async def _attach(req: Request, note_id: str, sha256: str, filename: str | None,
                  content_type: str | None) -> Response:
    nx = nexus_of(req)
    ctx = await nx.context(req)
    store = store_of(nx)
    async with UnitOfWork(nx.db, ctx) as uow:
        note = await _locked_note(uow, note_id)
        current = list(note.get("attachments") or [])
        if len(current) >= MAX_ATTACHMENTS:
            raise Problem(409, f"A note holds at most {MAX_ATTACHMENTS} attachments.")
        ref = await store.add_ref(uow, sha256, app=APP, resource=RESOURCE, record_id=note_id, filename=filename,
                                  content_type=content_type)
        await notes.service_instance.change(uow, note, {"attachments": [*current, summary(ref)]},
                                            "attachment_added")
    out = _public(note_id, ref)
    return json_response(out, status=201, headers={"Location": out["url"], "ETag": f'"{ref["sha256"]}"'})


# ------------------------------------------------------------------ routes


async def upload(req: Request) -> Response:
    """Attach a file sent as the raw request body (type in Content-Type, name in X-Filename)."""
    nx = nexus_of(req)
    _, note = await _note(req, write=True)  # before reading a byte of the body
    store = store_of(nx)
    ctype = req.headers.get("content-type")
    if ctype and ctype.lower().startswith("multipart/"):
        raise Problem(415, "Send the file itself as the request body (its type in Content-Type, its name in "
                           "X-Filename), not a multipart form.")
    declared: int | None = None
    if (raw_len := req.headers.get("content-length")) is not None:
        try:
            declared = int(raw_len)
        except ValueError:
            raise Problem(400, "Content-Length is not a number.") from None
    limit = min(store.max_upload_bytes, MAX_ATTACHMENT_BYTES)
    info = await store.put_stream(req.stream(), limit=limit, content_type=ctype, declared_size=declared)
    return await _attach(req, note["id"], info.sha256, _filename(req), info.content_type)


async def attach_blob(req: Request) -> Response:
    """Attach a file already uploaded to /api/v1/blobs (the upload stays where it is)."""
    nx = nexus_of(req)
    p, note = await _note(req, write=True)
    require_json(req)
    try:
        body = AttachInput.model_validate_json(await read_body(req) or b"{}")
    except ValidationError as exc:
        raise pydantic_errors(exc) from None
    require(p, "blobs.files.read")
    ref = await store_of(nx).get_ref(p.org_id, body.blob_id)
    # Only the upload API's own files: another app's ref carries that app's access rules.
    if ref is None or ref["app"] != "blobs":
        raise Problem(422, "No such uploaded file.", errors=[{"pointer": "/blob_id", "detail": "no such file"}])
    return await _attach(req, note["id"], ref["sha256"], ref["filename"], ref["content_type"])


async def list_attachments(req: Request) -> Response:
    """The note's attachments, oldest first."""
    nx = nexus_of(req)
    p, note = await _note(req)
    refs = await store_of(nx).refs_for(p.org_id, APP, RESOURCE, note["id"])
    return json_response({"items": [_public(note["id"], r) for r in refs]})


async def download_attachment(req: Request) -> Response:
    """Download an attachment: Range, If-None-Match, ETag; only passive types inline."""
    nx = nexus_of(req)
    p, note = await _note(req)
    ref = await _ref(store_of(nx), p, note["id"], req.path_params["aid"])
    # The kernel's download does the streaming, ranges, ETag, Content-Disposition, nosniff
    # and CSP; its own check (the caller may read notes) is weaker than the one just made.
    scope = {**req.scope, "path_params": {"ref_id": ref["id"]}}
    return await download(Request(scope, req.receive))


async def delete_attachment(req: Request) -> Response:
    """Remove an attachment; its content goes at the next blob garbage collection if
    nothing else refers to it."""
    nx = nexus_of(req)
    ctx = await nx.context(req)
    _, note = await _note(req, write=True)
    store = store_of(nx)
    ref = await _ref(store, ctx.principal, note["id"], req.path_params["aid"])
    async with UnitOfWork(nx.db, ctx) as uow:
        note = await _locked_note(uow, note["id"])
        if await store.remove_ref(uow, ref["id"]) is None:
            raise not_found("attachment")
        aid = attachment_id(ref["id"])
        kept = [a for a in note.get("attachments") or [] if a.get("id") != aid]
        await notes.service_instance.change(uow, note, {"attachments": kept}, "attachment_removed")
    return Response(status_code=204)


async def purge(req: Request) -> Response:
    """Delete a note for good: it must be in the trash (deleted) first; its owner or an admin.
    Its versions, shares and attachments go with it (the files at the next blob GC)."""
    nx = nexus_of(req)
    ctx = await nx.context(req)
    p = ctx.principal
    require(p, notes.permission("delete"))
    note_id = req.path_params["id"]
    if not is_id(note_id):
        raise not_found("note")
    read = notes.read_condition(p)
    sql = "SELECT id FROM notes_note WHERE org_id = ? AND id = ?"
    args: list[Any] = [p.org_id, note_id]
    if read is not None:
        sql += f" AND ({read[0]})"
        args += read[1]
    async with nx.db.reader() as conn:
        if await conn.fetchval(sql, args) is None:
            raise not_found("note")
    async with UnitOfWork(nx.db, ctx) as uow:
        note = await uow.require(notes.spec, note_id, include_deleted=True, what="note")
        owner_or_admin(uow, note, "Only the note's owner can delete it for good.")
        if note["deleted_at"] is None:
            raise Problem(409, "Delete the note first; only a deleted note can be deleted for good.")
        await store_of(nx).remove_refs(uow, app=APP, resource=RESOURCE, record_id=note_id)
        for table in ("notes_share", "notes_version"):
            await uow.conn.execute(f"DELETE FROM {table} WHERE org_id = ? AND note_id = ?", [ctx.org_id, note_id])
        await uow.conn.execute("DELETE FROM notes_note WHERE org_id = ? AND id = ?", [ctx.org_id, note_id])
        notes.service_instance.record_change(uow, "purged", note, None)
    return Response(status_code=204)


def _filename(req: Request) -> str:
    raw = req.headers.get("x-filename")
    if raw is None:
        raw = req.query_params.get("filename")
    else:
        with contextlib.suppress(UnicodeError):
            raw = raw.encode("latin-1").decode("utf-8")  # a client that sent raw UTF-8
        raw = unquote(raw, errors="replace")
    return safe_filename(raw)

