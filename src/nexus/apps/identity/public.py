"""What other apps and the command line may call on identity."""

from __future__ import annotations

from nexus.kernel.db import Database

from .service import count_orgs, create_admin, create_org, org_by_slug

__all__ = ["count_orgs", "create_admin", "create_org", "org_by_slug", "user_exists"]


async def user_exists(db: Database, org_id: str, user_id: str) -> bool:
    async with db.reader() as conn:
        return bool(await conn.fetchval(
            "SELECT 1 FROM identity_user WHERE org_id = ? AND id = ? AND deleted_at IS NULL", [org_id, user_id]))
