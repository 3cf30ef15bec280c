"""`nexus oidc rotate-keys`: a new signing key; the old one verifies until its tokens expire."""

from __future__ import annotations

import argparse
from typing import Any

from nexus.kernel.config import Settings
from nexus.kernel.db import create_database

from .keys import KeyStore


def register(sub: Any) -> None:
    oidc = sub.add_parser("oidc", help="the OpenID Connect provider")
    oidc_sub = oidc.add_subparsers(dest="oidc_command", required=True)
    rotate = oidc_sub.add_parser("rotate-keys", help="make a new signing key; the old one keeps verifying "
                                                     "until the tokens it signed have expired")
    rotate.set_defaults(handler=_rotate_keys)


async def _rotate_keys(settings: Settings, args: argparse.Namespace) -> int:
    db = create_database(settings)
    await db.open()
    try:
        keys = KeyStore(db, settings.secret_key, settings.access_token_ttl)
        kid = await keys.rotate()
        published = [k["kid"] for k in (await keys.jwks())["keys"]]
    finally:
        await db.close()
    print(f"signing with key {kid}; published keys: {', '.join(published)}")
    return 0
