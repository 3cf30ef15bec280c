"""Declared resources of the directory: SCIM tokens, LDAP connections, directory groups.
The generic record views of the web app draw their admin pages (DESIGN.md §3)."""

from __future__ import annotations

from nexus.kernel.resources import Action, Resource
from nexus.kernel.schema_base import Schema

from . import models, schemas
from .ldap import LdapConnectionService
from .service import DirectoryGroupService, ScimTokenService


class SyncRequest(Schema):
    full: bool = False


scim_tokens = Resource(
    app="identity", name="scim-tokens", title="SCIM tokens", model=models.ScimToken, create=schemas.ScimTokenCreate,
    update=schemas.ScimTokenUpdate, service=ScimTokenService, hidden=("secret_hash",), entity="scim_token",
    importable=False, filters=("name",), sorts=("name", "created_at", "last_used_at"), search=("name",),
    actions=(Action("revoke", "revoke", permission="delete", summary="Revoke the token"),),
    description="Bearer tokens for SCIM 2.0 provisioning clients (Okta, Azure AD) at /scim/v2; shown once.",
)

ldap_connections = Resource(
    app="identity", name="ldap-connections", title="LDAP connections", model=models.LdapConnection, create=schemas.LdapConnectionCreate,
    service=LdapConnectionService, hidden=("bind_secret",), entity="ldap_connection", importable=False,
    filters=("name", "enabled", "last_sync_status"), sorts=("name", "created_at", "last_sync_at"), search=("name",),
    actions=(
        Action("test", "test", permission="update", summary="Test the connection", event="tested"),
        Action("sync", "sync", SyncRequest, permission="update", summary="Sync now", event="sync_requested"),
    ),
    description="LDAP / Active Directory servers whose users and groups are imported, and who sign in by bind.",
)

directory_groups = Resource(
    app="identity", name="directory-groups", model=models.DirectoryGroup, create=schemas.DirectoryGroupCreate,
    update=schemas.DirectoryGroupUpdate, service=DirectoryGroupService, hidden=("display_name_ci", "data"),
    entity="directory_group", importable=False, filters=("source", "connection_id", "display_name"),
    sorts=("display_name", "created_at", "member_count"), search=("display_name",), default_sort="display_name",
    title_field="display_name",
    description="Groups from SCIM or LDAP; their roles are granted to their members.",
)

RESOURCES = [scim_tokens, ldap_connections, directory_groups]
