"""Notes routes beyond the generated ones: version history, shares, Markdown in and out, attachments."""

from __future__ import annotations

from urllib.parse import quote

from markdown_it import MarkdownIt
from markdownify import markdownify
from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.errors import Problem, bad_request, not_found
from nexus.kernel.http.app import nexus_of, read_body
from nexus.kernel.http.crud import query_params
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.ids import is_id
from nexus.kernel.permissions import require
from nexus.kernel.records import UnitOfWork

from . import attachments
from .resources import notes
from .schemas import AttachInput
from .service import VERSION

_ATT = "/api/v1/notes/notes/{id}/attachments"
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


async def _visible_note(req: Request) -> tuple[object, dict[str, object]]:
    nx = nexus_of(req)
    p = await nx.principal(req)
    require(p, notes.permission("read"))
    note_id = req.scope["path_params"]["id"]
    if not is_id(note_id):
        raise not_found("note")
    read = notes.read_condition(p)
    sql = f"SELECT {notes.spec.select_list} FROM notes_note WHERE org_id = ? AND id = ? AND deleted_at IS NULL"
    args: list[object] = [p.org_id, note_id]
    if read is not None:
        sql += f" AND ({read[0]})"
        args += read[1]
    async with nx.db.reader() as conn:
        row = await conn.fetchrow(sql, args)
    if row is None:
        raise not_found("note")
    return p, notes.spec.to_dict(nx.db.dialect, row)


async def versions(req: Request) -> Response:
    """The saved versions of a note, newest first."""
    nx = nexus_of(req)
    _, note = await _visible_note(req)
    async with nx.db.reader() as conn:
        rows = await conn.fetch(f"SELECT {VERSION.select_list} FROM notes_version WHERE org_id = ? AND note_id = ?"
                                " ORDER BY version DESC LIMIT 200", [note["org_id"], note["id"]])
    return json_response({"items": [VERSION.to_output(nx.db.dialect, r) for r in rows]})


async def shares(req: Request) -> Response:
    """Who the note is shared with."""
    nx = nexus_of(req)
    _, note = await _visible_note(req)
    async with nx.db.reader() as conn:
        rows = await conn.fetch("SELECT user_id, access, created_at FROM notes_share WHERE org_id = ? AND note_id = ?"
                                " ORDER BY created_at", [note["org_id"], note["id"]])
    return json_response({"items": [{"user_id": r[0], "access": r[1], "created_at": r[2]} for r in rows]})


async def export_markdown(req: Request) -> Response:
    """The note as a Markdown file."""
    _, note = await _visible_note(req)
    text = f"# {note['title']}\n\n" + markdownify(str(note["body"]), heading_style="ATX", bullets="-").strip() + "\n"
    if note["tags"]:
        text += "\n" + " ".join(f"#{t}" for t in note["tags"]) + "\n"  # type: ignore[attr-defined]
    name = quote(f"{note['title']}.md")
    return Response(text, media_type="text/markdown; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"})


async def import_markdown(req: Request) -> Response:
    """Create a note from a Markdown file (text/markdown); the first heading becomes the title."""
    nx = nexus_of(req)
    ctx = await nx.context(req)
    require(ctx.principal, notes.permission("create"))
    media = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in ("text/markdown", "text/plain", "text/x-markdown"):
        raise Problem(415, "Send the Markdown as text/markdown.")
    params = query_params(req)
    unknown = set(params) - {"title", "notebook_id"}
    if unknown:
        raise bad_request(f"Unknown parameter {sorted(unknown)[0]!r}; use title and notebook_id.")
    raw = await read_body(req, 2_000_000)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad_request("The file is not valid UTF-8.") from None
    if "\x00" in text:
        raise bad_request("The file contains NUL characters.")
    title = (params.get("title") or [""])[0].strip()
    lines = text.lstrip().splitlines()
    if lines and lines[0].startswith("# "):
        title = title or lines[0][2:].strip()
        text = "\n".join(lines[1:])
    title = (title or "Imported note")[:300]
    from .schemas import NoteCreate

    notebook_id = params["notebook_id"][0] if params.get("notebook_id") else None
    data = NoteCreate(title=title, body=_md.render(text), notebook_id=notebook_id)
    async with UnitOfWork(nx.db, ctx) as uow:
        record = await notes.service_instance.create(uow, data.model_dump())
    return json_response(record, status=201, headers={"Location": f"/api/v1/notes/notes/{record['id']}"})



ROUTES = [
    RouteDef("GET", "/api/v1/notes/notes/{id}/versions", versions, tags=("notes",), summary="Version history"),
    RouteDef("GET", "/api/v1/notes/notes/{id}/shares", shares, tags=("notes",), summary="Who it is shared with"),
    RouteDef("GET", "/api/v1/notes/notes/{id}/markdown", export_markdown, tags=("notes",), summary="Export as Markdown"),
    RouteDef("POST", "/api/v1/notes/import-markdown", import_markdown, tags=("notes",),
             summary="Import a Markdown file", request_media="text/markdown", status=201),
    RouteDef("GET", f"{_ATT}", attachments.list_attachments, tags=("notes",), summary="The note's attachments"),
    RouteDef("POST", f"{_ATT}", attachments.upload, tags=("notes",), status=201,
             summary="Attach a file (raw body; type in Content-Type, name in X-Filename)",
             request_schema={"type": "string", "format": "binary"}, request_media="application/octet-stream"),
    RouteDef("POST", "/api/v1/notes/notes/{id}/attach", attachments.attach_blob, tags=("notes",), status=201,
             summary="Attach a file uploaded to /api/v1/blobs", request_schema=AttachInput),
    RouteDef("GET", f"{_ATT}/{{aid}}", attachments.download_attachment, tags=("notes",),
             summary="Download an attachment (ranges, ETag)"),
    RouteDef("DELETE", f"{_ATT}/{{aid}}", attachments.delete_attachment, tags=("notes",), status=204,
             summary="Remove an attachment"),
    RouteDef("POST", "/api/v1/notes/notes/{id}/purge", attachments.purge, tags=("notes",), status=204,
             summary="Delete a deleted note for good, with its attachments"),
]
