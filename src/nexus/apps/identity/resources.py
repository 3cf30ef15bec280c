"""Identity's declared resources: users, roles and API keys of the caller's org."""

from __future__ import annotations

from typing import Any

from nexus.kernel.resources import Action, RecordRule, Resource

from . import models, schemas
from .service import ApiKeyService, RoleService, UserService

users = Resource(
    app="identity", name="users", model=models.User, create=schemas.UserCreate, update=schemas.UserUpdate,
    service=UserService, hidden=("password_hash", "failed_logins", "locked_until"),
    filters=("email", "status", "is_service_account", "roles"), sorts=("name", "email", "created_at", "last_login_at"),
    search=("name", "email"), default_sort="name", title_field="name", importable=True,
    actions=(
        Action("assign-roles", "assign_roles", schemas.RoleAssignment, permission="update", summary="Replace the user's roles"),
        Action("deactivate", "deactivate", permission="update", summary="Deactivate and end every session"),
        Action("reactivate", "reactivate", permission="update", summary="Reactivate a deactivated user"),
        Action("set-password", "set_password", schemas.PasswordSet, permission="update", summary="Set the password"),
    ),
    description="People and service accounts of the organisation.",
)

roles = Resource(
    app="identity", name="roles", model=models.Role, create=schemas.RoleCreate, service=RoleService,
    filters=("name", "builtin"), sorts=("name", "created_at"), search=("name", "description"), default_sort="name",
    description="Roles grant permissions named app.resource.action.",
)


def _own_keys(principal: Any) -> tuple[str, list[Any]]:
    return "user_id = ?", [principal.user_id]


api_keys = Resource(
    app="identity", name="api-keys", model=models.ApiKey, create=schemas.ApiKeyCreate, service=ApiKeyService,
    hidden=("secret_hash",), entity="api_key", importable=False,
    filters=("user_id", "name"), sorts=("name", "created_at", "last_used_at"), search=("name",),
    actions=(Action("revoke", "revoke", permission="delete", summary="Revoke the key"),),
    # Everyone sees and manages their own keys; identity.api-keys.all (admins, through *) all of them.
    rule=RecordRule(read=_own_keys, bypass="all"),
    description="Keys for machines, scoped to a subset of their owner's permissions; shown once.",
)

RESOURCES = [users, roles, api_keys]

# IdP connections and SAML SP registrations (federation/).
from .federation.resources import RESOURCES as _FEDERATION  # noqa: E402

RESOURCES += _FEDERATION
from .directory.resources import RESOURCES as _DIRECTORY  # noqa: E402

RESOURCES += _DIRECTORY
from .oidc.clients import RESOURCES as _OIDC_RESOURCES  # noqa: E402

RESOURCES += _OIDC_RESOURCES
