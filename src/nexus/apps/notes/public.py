"""What other apps may call on Notes."""

from __future__ import annotations

from .service import plain_text, sanitize

__all__ = ["plain_text", "sanitize"]
