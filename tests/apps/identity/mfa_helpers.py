"""Helpers for the MFA tests: an authenticator app (pyotp) and an enrolled user."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp

from nexus.kernel.http.app import Nexus
from tests.factories import PASSWORD, Actor, new_org, token_for

ACCOUNT = "/api/v1/identity/account"


@dataclass
class AuthenticatorApp:
    """What the phone app does: codes from the seed, each time step used once (as the server
    requires), waiting for the next step when the window ahead is used up."""

    secret: str
    last_step: int = -1
    totp: pyotp.TOTP = field(init=False)

    def __post_init__(self) -> None:
        self.totp = pyotp.TOTP(self.secret)

    async def code(self) -> str:
        while True:
            now = int(time.time() // 30)
            step = max(self.last_step + 1, now - 1)
            if step <= now + 1:
                self.last_step = step
                return self.totp.at(step * 30)
            await asyncio.sleep(1)


async def enrol_totp(actor: Actor) -> tuple[AuthenticatorApp, list[str], str]:
    """Enrol an authenticator app for the actor: (app, recovery codes, factor id)."""
    r = await actor.post(f"{ACCOUNT}/totp", json={"name": "Phone"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    app = AuthenticatorApp(body["secret"])
    r = await actor.post(f"{ACCOUNT}/totp/{body['factor_id']}/confirm", json={"code": await app.code()})
    assert r.status_code == 200, r.text
    return app, r.json()["recovery_codes"], body["factor_id"]


async def mfa_owner(client: httpx.AsyncClient, nx: Nexus) -> tuple[Actor, AuthenticatorApp, list[str]]:
    owner = await new_org(client, nx)
    app, codes, _fid = await enrol_totp(owner)
    return owner, app, codes


async def password_step(client: httpx.AsyncClient, actor: Actor, password: str = PASSWORD) -> dict[str, Any]:
    """The password grant for a user with MFA: 403 mfa_required and the MFA token."""
    r = await token_for(client, actor.email, password, org=actor.org_slug)
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["error"] == "mfa_required"
    return body  # type: ignore[no-any-return]


async def mfa_grant(client: httpx.AsyncClient, mfa_token: str, **fields: str) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"grant_type": "mfa", "mfa_token": mfa_token, **fields})
