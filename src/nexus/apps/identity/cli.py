"""Identity's commands: `nexus admin create`, and the first admin at first start."""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from typing import Any

from nexus.kernel.config import Settings
from nexus.kernel.db import create_database
from nexus.kernel.errors import Problem

from .schemas import _email
from .service import count_orgs, create_admin

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


def register(sub: Any) -> None:
    admin = sub.add_parser("admin", help="administer organisations and users")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser("create", help="create an admin (owner) of an org, and the org if new")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--org", default="default", help="org slug (default: default)")
    create.set_defaults(handler=_admin_create)
    from .oidc.cli import register as register_oidc

    register_oidc(sub)


def _fail(message: str) -> int:
    print(f"nexus admin create: {message}", file=sys.stderr)
    return 2


async def _admin_create(settings: Settings, args: argparse.Namespace) -> int:
    """Create an owner, or give an existing user of the org back their way in: the password
    is set, the account unlocked, reactivated (restored if deleted) and made an owner."""
    try:
        email = _email(args.email.strip())
    except ValueError:
        return _fail(f"{args.email!r} is not an email address")
    if not 8 <= len(args.password) <= 1024:
        return _fail("the password must be 8 to 1024 characters")
    if not _SLUG.match(args.org):
        return _fail(f"{args.org!r} is not an org slug (2-64 of a-z, 0-9 and -, not starting with -)")
    db = create_database(settings)
    await db.open()
    try:
        org_id, user_id, created = await create_admin(db, email, args.password, args.org)
    except Problem as exc:
        return _fail(exc.detail + "".join(f" {e.get('detail', '')}" for e in exc.errors or []))
    finally:
        await db.close()
    print(f"{'created' if created else 'updated'} admin {email} (user {user_id}) in org {args.org!r} ({org_id})")
    return 0


async def bootstrap(settings: Settings, base_url: str) -> None:
    """On the first start of an empty installation, create the first org and its admin."""
    db = create_database(settings)
    await db.open()
    try:
        if await count_orgs(db) > 0:
            return
        email = (settings.admin_email or "admin@example.com").strip().lower()
        password = settings.admin_password
        generated = password is None
        if password is None:
            password = secrets.token_urlsafe(12)
        try:
            await create_admin(db, email, password, "default", "Default")
        except Problem as exc:
            if exc.status == 422:  # NEXUS_ADMIN_PASSWORD is too weak for the password policy
                raise SystemExit("NEXUS_ADMIN_PASSWORD: " + "; ".join(e.get("detail", "") for e in exc.errors or [])) from None
            return  # another process started at the same moment and set up the installation
    finally:
        await db.close()
    print("\n  NEXUS is set up. Sign in as")
    print(f"    email:    {email}")
    if generated:
        print(f"    password: {password}    (generated; shown this once — change it after signing in)")
    else:
        print("    password: the one in NEXUS_ADMIN_PASSWORD")
    print()
