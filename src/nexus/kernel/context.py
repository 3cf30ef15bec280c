"""Who is asking, for which org, in which request: passed explicitly to every service call."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    org_id: str
    kind: str  # "user" | "api_key" | "system"
    permissions: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None
    api_key_id: str | None = None
    email: str | None = None
    name: str | None = None
    roles: tuple[str, ...] = ()
    # When (epoch seconds) and how (RFC 8176 values: pwd, otp, hwk, …) the session's user last
    # proved who they are; None/empty for API keys and the system. See kernel/auth.require_recent_auth.
    auth_time: float | None = None
    amr: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    principal: Principal
    request_id: str | None = None
    client_addr: str | None = None

    @property
    def org_id(self) -> str:
        return self.principal.org_id

    @property
    def user_id(self) -> str:
        return self.principal.user_id


def system_context(org_id: str, request_id: str | None = None) -> Context:
    """For work the platform does on an org's behalf (bootstrap, jobs): all permissions."""
    return Context(Principal(user_id="system", org_id=org_id, kind="system", permissions=frozenset({"*"})), request_id)
