"""Notes tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nexus.kernel.db.schema import Base, IdType, JsonType, Record, Timestamp


class Notebook(Record, Base):
    __tablename__ = "notes_notebook"
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    color: Mapped[str] = mapped_column(String(16), default="#0ea5e9")


class Note(Record, Base):
    __tablename__ = "notes_note"
    notebook_id: Mapped[str | None] = mapped_column(IdType)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")  # sanitised HTML
    body_text: Mapped[str] = mapped_column(Text, default="")  # plain text, for search and previews
    tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    visibility: Mapped[str] = mapped_column(String(16), default="private")  # private | org
    attachments: Mapped[list[dict[str, object]]] = mapped_column(JsonType, default=list)
    # Who it is shared with (notes_share holds the access level): kept on the note so that
    # search can scope the note's entry to exactly the people who may open it.
    shared_with: Mapped[list[str]] = mapped_column(JsonType, default=list, server_default="[]")

    __table_args__ = (
        Index("ix_notes_note_org_created", "org_id", "created_at"),
        Index("ix_notes_note_owner", "org_id", "created_by", "pinned", "updated_at"),
        Index("ix_notes_note_notebook", "org_id", "notebook_id"),
    )


class Share(Base):
    """A note shared with one colleague, to read or to edit."""

    __tablename__ = "notes_share"
    org_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    note_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    access: Mapped[str] = mapped_column(String(8))  # read | edit
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_notes_share_user", "org_id", "user_id", "note_id"),)


class NoteVersion(Base):
    """The content of a note before each change: its version history."""

    __tablename__ = "notes_version"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    note_id: Mapped[str] = mapped_column(IdType)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    saved_at: Mapped[datetime] = mapped_column(Timestamp)
    saved_by: Mapped[str | None] = mapped_column(IdType)

    __table_args__ = (Index("ix_notes_version_note", "org_id", "note_id", "version"),)
