"""Models and migrations agree on every database back end (what `nexus check-migrations` runs)."""

from __future__ import annotations

import asyncio

from nexus.kernel import migrate
from nexus.kernel.config import Settings


async def test_models_match_migrations(settings: Settings) -> None:
    await asyncio.to_thread(migrate.check, settings)


async def test_database_is_at_heads(settings: Settings) -> None:
    heads = await asyncio.to_thread(migrate.heads, settings)
    assert await asyncio.to_thread(migrate.current, settings) == heads
    assert {"kernel", "identity", "tasks"} <= {
        label for rev in heads for label in _labels(settings, rev)
    }


def _labels(settings: Settings, rev: str) -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config(settings))
    out: set[str] = set()
    for r in script.iterate_revisions(rev, "base"):
        out |= set(r.branch_labels or ())
    return out
