"""What the Notes API takes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from nexus.kernel.schema_base import Schema

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]


class NotebookCreate(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=5000)] = ""
    color: Color = "#0ea5e9"


class NoteCreate(Schema):
    title: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    body: Annotated[str, StringConstraints(max_length=2_000_000)] = Field(
        default="", description="HTML; scripts, event handlers and unsafe URLs are removed",
        json_schema_extra={"format": "html"})
    notebook_id: str | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    pinned: bool = False
    visibility: Literal["private", "org"] = Field(
        default="private", description="private: you and the people you share it with; org: everyone in the org")


class ShareInput(Schema):
    user_id: str
    access: Literal["read", "edit"] = "read"


class UnshareInput(Schema):
    user_id: str


class RestoreVersionInput(Schema):
    version: int = Field(ge=1)


class AttachInput(Schema):
    blob_id: str = Field(description="The id of an uploaded blob (POST /api/v1/blobs)")
