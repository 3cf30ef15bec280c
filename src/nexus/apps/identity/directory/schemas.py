"""What the directory admin API takes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from nexus.kernel.schema_base import Schema

from ..schemas import RoleName

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Dn = Annotated[str, StringConstraints(max_length=500)]


class ScimTokenCreate(Schema):
    name: Name
    default_roles: list[RoleName] = Field(default_factory=lambda: ["member"], max_length=20,
                                          description="Roles of users the client provisions")
    expires_at: datetime | None = None


class DirectoryGroupCreate(Schema):
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    roles: list[RoleName] = Field(default_factory=list, max_length=20,
                                  description="NEXUS roles the group's members hold")


class DirectoryGroupUpdate(Schema):
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    roles: list[RoleName] | None = Field(default=None, max_length=20)


class LdapConnectionCreate(Schema):
    name: Name
    url: Annotated[str, StringConstraints(min_length=8, max_length=500, pattern=r"^ldaps?://[^\s/]+/?$")] = Field(
        description="ldap://host:389 or ldaps://host:636")
    start_tls: bool = False
    bind_dn: Dn = ""
    bind_password: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, description="Stored encrypted; never shown again")
    user_base_dn: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    user_filter: Annotated[str, StringConstraints(min_length=3, max_length=500)] = "(objectClass=inetOrgPerson)"
    group_base_dn: Dn = ""
    group_filter: Annotated[str, StringConstraints(min_length=3, max_length=500)] = "(objectClass=groupOfNames)"
    attributes: dict[str, Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=dict, description="username, email, name, given_name, family_name, member, group_name")
    group_roles: dict[Annotated[str, StringConstraints(min_length=1, max_length=500)], list[RoleName]] = Field(
        default_factory=dict, description="Group (cn or DN) → NEXUS roles")
    default_roles: list[RoleName] = Field(default_factory=lambda: ["member"], max_length=20)
    disabled_attribute: Annotated[str, StringConstraints(max_length=100)] = Field(
        default="", description="userAccountControl (AD), or an attribute whose value marks a disabled account")
    disabled_value: Annotated[str, StringConstraints(max_length=200)] = ""
    sign_in: bool = Field(default=True, description="Directory users sign in with their directory password")
    schedule: Annotated[str, StringConstraints(max_length=100)] = Field(
        default="", description="Cron (UTC) for scheduled sync; empty for on demand only")
    enabled: bool = True


class ScimTokenUpdate(Schema):
    name: Name | None = None
    default_roles: list[RoleName] | None = Field(default=None, max_length=20)
    expires_at: datetime | None = None
