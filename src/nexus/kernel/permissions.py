"""The one permission check. Every route, export, import, action and search calls it.

Permissions are named `app.resource.action`; a role grants a set of them, where `*`
stands for any one segment (`tasks.*.read`, `*.*.read`) and a bare `*` for all.
"""

from __future__ import annotations

from nexus.kernel.context import Principal
from nexus.kernel.errors import forbidden

ACTIONS = ("read", "create", "update", "delete", "export", "import")

# Apps whose permissions a wildcard app segment (`*.*.read`) does not reach: granting
# them takes naming the app. Filled from the manifests at start (privileged=True).
PRIVILEGED_APPS: set[str] = {"audit", "jobs"}

# Single permissions that a wildcard app segment does not reach either: what configures an
# app rather than works in it (a CRM's pipelines and currency, not its deals). A member's
# `*.*.update` does not grant them; `*`, or a grant that names the app (`crm.*.*`,
# `crm.pipelines.update`), does. Filled at start from each Resource's `privileged` verbs and
# each manifest's `privileged_permissions` (for routes that are not a resource's).
PRIVILEGED_PERMISSIONS: set[str] = set()


def has_permission(principal: Principal, permission: str) -> bool:
    granted = principal.permissions
    if "*" in granted or permission in granted:
        return True
    app, _, rest = permission.partition(".")
    resource, _, action = rest.partition(".")
    if f"{app}.{resource}.*" in granted or f"{app}.*.{action}" in granted or f"{app}.*.*" in granted:
        return True
    if app in PRIVILEGED_APPS or permission in PRIVILEGED_PERMISSIONS:
        return False
    return (f"*.*.{action}" in granted or f"*.{resource}.{action}" in granted
            or f"*.{resource}.*" in granted or "*.*.*" in granted)


def require(principal: Principal, permission: str) -> None:
    if not has_permission(principal, permission):
        raise forbidden(permission)


def valid_permission_name(name: str) -> bool:
    if name == "*":
        return True
    parts = name.split(".")
    return len(parts) == 3 and all(p == "*" or (p and p.replace("-", "").replace("_", "").isalnum()) for p in parts)
