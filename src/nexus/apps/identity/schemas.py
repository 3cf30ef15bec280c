"""What the identity API takes and returns."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from nexus.kernel.permissions import valid_permission_name
from nexus.kernel.schema_base import Schema


def _tz(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _perm(value: str) -> str:
    if not valid_permission_name(value):
        raise ValueError(f"{value!r} is not a permission (app.resource.action, * for any segment)")
    return value


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value.lower()


Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_tz)]
Permission = Annotated[str, StringConstraints(max_length=200), AfterValidator(_perm)]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]


class UserCreate(Schema):
    email: Email = Field(description="Sign-in address")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    password: Password | None = Field(default=None, description="Set a password now, or leave empty to invite")
    roles: list[RoleName] = Field(default_factory=lambda: ["member"], max_length=20)
    timezone: TimeZone = "UTC"



class UserUpdate(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    timezone: TimeZone | None = None


class RoleAssignment(Schema):
    roles: list[RoleName] = Field(min_length=0, max_length=20)


class PasswordSet(Schema):
    password: Password


class RoleCreate(Schema):
    name: RoleName
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    permissions: list[Permission] = Field(default_factory=list, max_length=500)


class ApiKeyCreate(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    permissions: list[Permission] = Field(default_factory=list, max_length=500,
                                          description="Subset of your own permissions; empty means all of them")
    expires_at: datetime | None = None


class OrgCreate(Schema):
    slug: Annotated[str, StringConstraints(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class TokenResponse(Schema):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
