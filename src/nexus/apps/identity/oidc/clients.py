"""OAuth clients, registered by org admins as a declared resource (identity.oauth-clients).

A confidential client gets a secret, shown once and stored hashed (sha256: it carries 256
bits of entropy, so a slow hash adds nothing). Redirect URIs are matched exactly, so they are
checked strictly here: absolute, no fragment, https — or http only on a loopback host
(RFC 8252 native apps) — or a private-use scheme with a dot (com.example.app:/cb).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from nexus.kernel.auth import hash_secret
from nexus.kernel.errors import Problem, validation
from nexus.kernel.permissions import valid_permission_name
from nexus.kernel.records import TableSpec, UnitOfWork
from nexus.kernel.resources import Action, RecordService, Resource
from nexus.kernel.schema_base import Schema

from ..schemas import RoleName
from . import models

OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
API_SCOPE = "api"  # every permission of the user (or service account)
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SECRET_PREFIX = "nxcs_"

CLIENT = TableSpec(models.OAuthClient, hidden=("secret_hash",))


def valid_scope(value: str) -> bool:
    return value in OIDC_SCOPES or value == API_SCOPE or (value != "*" and valid_permission_name(value))


def _scope(value: str) -> str:
    if not valid_scope(value):
        raise ValueError(f"{value!r} is not a scope: openid, profile, email, offline_access, api, "
                         "or a permission such as tasks.tasks.read")
    return value


def _loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return bool(host) and ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _private_use_scheme(scheme: str) -> bool:
    """A native app's reverse-domain scheme (RFC 8252 §7.1), e.g. com.example.app."""
    return "." in scheme and scheme.replace(".", "").replace("-", "").isalnum()


def _redirect_uri(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("not a URI") from None
    if parts.fragment or "#" in value:
        raise ValueError("a redirect URI has no fragment")
    if any(c.isspace() for c in value):
        raise ValueError("a redirect URI has no spaces")
    if parts.scheme == "https":
        if not parts.hostname or parts.username is not None or parts.password is not None:
            raise ValueError("an https redirect URI names a host and no user")
    elif parts.scheme == "http":
        if not _loopback(parts.hostname) or parts.username is not None:
            raise ValueError("http is allowed only on a loopback host (localhost, 127.0.0.1, ::1); use https")
    elif not _private_use_scheme(parts.scheme):
        raise ValueError("use https, http on a loopback host, or a private-use scheme like com.example.app")
    return value


Scope = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_scope)]
RedirectUri = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=False),
                        AfterValidator(_redirect_uri)]
GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
_DEFAULT_GRANTS: tuple[GrantType, ...] = ("authorization_code", "refresh_token")


class OAuthClientCreate(Schema):
    name: Name
    client_type: Literal["confidential", "public"] = Field(
        default="confidential", description="public: a browser or native app that cannot keep a secret (PKCE required)")
    redirect_uris: list[RedirectUri] = Field(default_factory=list, max_length=20,
                                             description="Matched exactly, character for character")
    post_logout_redirect_uris: list[RedirectUri] = Field(default_factory=list, max_length=20)
    grant_types: list[GrantType] = Field(default_factory=lambda: list(_DEFAULT_GRANTS),
                                         min_length=1, max_length=3)
    scopes: list[Scope] = Field(default_factory=lambda: ["openid", "profile", "email"], min_length=1,
                                max_length=100, description="What the client may ask for")
    first_party: bool = Field(default=False, description="Trusted: users are not asked for consent")
    service_roles: list[RoleName] = Field(
        default_factory=lambda: ["viewer"], min_length=1, max_length=20,
        description="Roles of the client's own service account (client_credentials grant)")

    @model_validator(mode="after")
    def _consistent(self) -> OAuthClientCreate:
        _check_consistent(self.client_type, self.grant_types, self.redirect_uris)
        return self


class OAuthClientUpdate(Schema):
    name: Name | None = None
    redirect_uris: list[RedirectUri] | None = Field(default=None, max_length=20)
    post_logout_redirect_uris: list[RedirectUri] | None = Field(default=None, max_length=20)
    grant_types: list[GrantType] | None = Field(default=None, min_length=1, max_length=3)
    scopes: list[Scope] | None = Field(default=None, min_length=1, max_length=100)
    first_party: bool | None = None


def _check_consistent(client_type: str, grant_types: Sequence[str], redirect_uris: Sequence[str]) -> None:
    if client_type == "public" and "client_credentials" in grant_types:
        raise ValueError("a public client cannot use client_credentials: it has no secret")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ValueError("the authorization_code grant needs at least one redirect URI")


class OAuthClientService(RecordService):
    async def create(self, uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
        from ..service import UserService

        values = dict(values)
        service_roles = values.pop("service_roles", None) or []
        values["grant_types"] = list(dict.fromkeys(values["grant_types"]))
        values["scopes"] = list(dict.fromkeys(values["scopes"]))
        values["client_id"] = secrets.token_hex(16)
        secret = None
        if values["client_type"] == "confidential":
            secret = SECRET_PREFIX + secrets.token_urlsafe(32)
            values["secret_hash"] = hash_secret(secret)
            values["secret_rotated_at"] = uow.now
        if "client_credentials" in values["grant_types"]:
            # The client acts as its own service account: its roles say what it may do,
            # and the nobody-grants-what-they-do-not-hold rule applies to them as to anyone.
            user = await UserService.instance().create(uow, {
                "email": f"client-{values['client_id']}@oauth-clients.invalid", "name": f"{values['name']} (client)",
                "roles": service_roles, "timezone": "UTC", "is_service_account": True})
            await uow.conn.execute("UPDATE identity_user SET status = 'active' WHERE id = ?", [user["id"]])
            values["service_user_id"] = user["id"]
        record = await uow.insert(self.spec, values)
        self.record_change(uow, "created", None, record)
        shown = dict(record)
        if secret is not None:
            shown["client_secret"] = secret  # shown once, stored only hashed
        return shown

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        grants = changes.get("grant_types", before["grant_types"])
        uris = changes.get("redirect_uris", before["redirect_uris"])
        try:
            _check_consistent(before["client_type"], grants, uris)
        except ValueError as exc:
            raise validation([{"pointer": "/grant_types", "detail": str(exc)}]) from None
        if "client_credentials" in grants and not before["service_user_id"]:
            raise validation([{"pointer": "/grant_types",
                               "detail": "client_credentials is chosen when the client is registered"}])
        from ..service import _invalidate

        uow.after_commit.append(_invalidate)  # fewer scopes apply to issued tokens at once

    async def rotate_secret(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["client_type"] != "confidential":
            raise Problem(409, "A public client has no secret.")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        out = await self.change(uow, record, {"secret_hash": hash_secret(secret), "secret_rotated_at": uow.now},
                                "secret_rotated")
        shown = dict(out)
        shown["client_secret"] = secret
        return shown

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        # A deleted client's tokens stop working at once (and stay revoked if it is restored).
        await uow.conn.execute(
            "UPDATE identity_oauth_grant SET revoked_at = ?, revoked_reason = 'client_deleted'"
            " WHERE org_id = ? AND client_id = ? AND revoked_at IS NULL",
            [uow.db.ts(uow.now), uow.ctx.org_id, record["client_id"]])
        if record["service_user_id"]:
            await uow.conn.execute("UPDATE identity_user SET status = 'deactivated' WHERE id = ? AND org_id = ?",
                                   [record["service_user_id"], uow.ctx.org_id])
        from ..service import _invalidate

        uow.after_commit.append(_invalidate)

    async def restore(self, uow: UnitOfWork, record_id: str) -> dict[str, Any]:
        out = await super().restore(uow, record_id)
        if out.get("service_user_id"):
            await uow.conn.execute("UPDATE identity_user SET status = 'active' WHERE id = ? AND org_id = ?",
                                   [out["service_user_id"], uow.ctx.org_id])
        return out


oauth_clients = Resource(
    app="identity", name="oauth-clients", model=models.OAuthClient, create=OAuthClientCreate,
    update=OAuthClientUpdate, service=OAuthClientService, hidden=("secret_hash",), entity="oauth_client",
    filters=("client_type", "client_id", "first_party"), sorts=("name", "created_at"), search=("name", "client_id"),
    default_sort="name", title_field="name", importable=False,
    actions=(Action("rotate-secret", "rotate_secret", permission="update",
                    summary="Replace the client secret (shown once)", event="secret_rotated"),),
    description="Applications that sign users in through NEXUS (OpenID Connect) or call its API (OAuth 2.1).",
)

RESOURCES = [oauth_clients]
