"""Identity's commands: `nexus admin create`, and the first admin at first start."""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from nexus.kernel.config import Settings
from nexus.kernel.db import create_database

from .service import count_orgs, create_admin


def register(sub: Any) -> None:
    admin = sub.add_parser("admin", help="administer organisations and users")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser("create", help="create an admin (owner) of an org, and the org if new")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--org", default="default", help="org slug (default: default)")
    create.set_defaults(handler=_admin_create)


async def _admin_create(settings: Settings, args: argparse.Namespace) -> int:
    if len(args.password) < 8:
        print("error: the password must be at least 8 characters")
        return 2
    db = create_database(settings)
    await db.open()
    try:
        org_id, user_id, created = await create_admin(db, args.email, args.password, args.org)
    finally:
        await db.close()
    print(f"{'created' if created else 'updated'} admin {args.email} (user {user_id}) in org {args.org!r} ({org_id})")
    return 0


async def bootstrap(settings: Settings, base_url: str) -> None:
    """On the first start of an empty installation, create the first org and its admin."""
    db = create_database(settings)
    await db.open()
    try:
        if await count_orgs(db) > 0:
            return
        email = settings.admin_email or "admin@example.com"
        password = settings.admin_password
        generated = password is None
        if password is None:
            password = secrets.token_urlsafe(12)
        await create_admin(db, email, password, "default", "Default")
    finally:
        await db.close()
    print("\n  NEXUS is set up. Sign in as")
    print(f"    email:    {email}")
    if generated:
        print(f"    password: {password}    (generated; shown this once — change it after signing in)")
    else:
        print("    password: the one in NEXUS_ADMIN_PASSWORD")
    print()
