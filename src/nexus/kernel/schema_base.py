"""The base for request schemas: unknown fields are refused, strings trimmed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
