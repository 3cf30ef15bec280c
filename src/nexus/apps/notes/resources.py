"""Notes resources. A note is private to its owner unless shared or made visible to the org."""

from __future__ import annotations

from typing import Any

from nexus.kernel.context import Principal
from nexus.kernel.resources import Action, RecordRule, Resource, View

from . import models, schemas
from .service import NotebookService, NoteService

_SHARED = ("EXISTS (SELECT 1 FROM notes_share s WHERE s.org_id = notes_note.org_id AND s.note_id = notes_note.id"
           " AND s.user_id = ?{access})")


def _can_read(p: Principal) -> tuple[str, list[Any]]:
    return (f"notes_note.created_by = ? OR notes_note.visibility = 'org' OR {_SHARED.format(access='')}",
            [p.user_id, p.user_id])


def _can_edit(p: Principal) -> tuple[str, list[Any]]:
    return (f"notes_note.created_by = ? OR {_SHARED.format(access=' AND s.access = ?')}", [p.user_id, p.user_id, "edit"])


def _searchable_by(note: dict[str, Any]) -> list[str] | None:
    """Who finds the note in global search: everyone who may read notes if it is the org's,
    else its owner, the people it is shared with, and admins (who see every note)."""
    if note.get("visibility") == "org":
        return None
    people = [note.get("created_by"), *(note.get("shared_with") or [])]
    return [f"user:{u}" for u in people if u] + ["role:owner", "role:admin"]


def _mine(p: Principal, db: Any) -> list[tuple[str, list[Any]]]:
    return [("created_by = ?", [p.user_id])]


def _shared_with_me(p: Principal, db: Any) -> list[tuple[str, list[Any]]]:
    return [(_SHARED.format(access=""), [p.user_id])]


notebooks = Resource(
    app="notes", name="notebooks", model=models.Notebook, create=schemas.NotebookCreate, service=NotebookService,
    filters=("name",), sorts=("name", "created_at"), search=("name", "description"), default_sort="name",
    description="Collections of notes.",
)

notes = Resource(
    app="notes", name="notes", model=models.Note, create=schemas.NoteCreate, service=NoteService,
    filters=("notebook_id", "tags", "pinned", "visibility", "title"),
    sorts=("updated_at", "created_at", "title", "pinned"),
    search=("title", "body_text"), default_sort="-updated_at",
    references={"notebook_id": "notes.notebooks"},
    rule=RecordRule(read=_can_read, write=_can_edit),
    search_visibility=_searchable_by,
    actions=(
        Action("pin", "pin", summary="Pin to the top", event="pinned"),
        Action("unpin", "unpin", summary="Unpin", event="unpinned"),
        Action("share", "share", schemas.ShareInput, summary="Share with a colleague (read or edit)", event="shared"),
        Action("unshare", "unshare", schemas.UnshareInput, summary="Stop sharing with a colleague", event="unshared"),
        Action("restore-version", "restore_version", schemas.RestoreVersionInput,
               summary="Bring back an earlier version", event="version_restored"),
    ),
    views=(View("mine", "My notes", _mine), View("shared", "Shared with me", _shared_with_me)),
    description="Rich-text notes with tags, pinning, sharing and version history.",
)

RESOURCES = [notebooks, notes]
