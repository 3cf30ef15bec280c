"""Identity's declared resources: users, roles and API keys of the caller's org."""

from __future__ import annotations

from nexus.kernel.resources import Action, Resource

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

api_keys = Resource(
    app="identity", name="api-keys", model=models.ApiKey, create=schemas.ApiKeyCreate, service=ApiKeyService,
    hidden=("secret_hash",), entity="api_key", importable=False,
    filters=("user_id", "name"), sorts=("name", "created_at", "last_used_at"), search=("name",),
    actions=(Action("revoke", "revoke", permission="delete", summary="Revoke the key"),),
    description="Keys for machines, scoped to a subset of their owner's permissions; shown once.",
)

RESOURCES = [users, roles, api_keys]
