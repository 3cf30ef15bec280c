"""Directory tables: SCIM tokens, LDAP connections, accounts and groups that a directory
(SCIM client or LDAP server) manages, and the attribute index SCIM filters run on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexus.kernel.db.schema import Base, IdType, JsonType, Record, Timestamp


class ScimToken(Record, Base):
    """A bearer token an org admin issues to a provisioning client (Okta, Azure AD…)."""

    __tablename__ = "identity_scim_token"
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    default_roles: Mapped[list[str]] = mapped_column(JsonType, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)


class LdapConnection(Record, Base):
    __tablename__ = "identity_ldap_connection"
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500))
    start_tls: Mapped[bool] = mapped_column(Boolean, default=False)
    bind_dn: Mapped[str] = mapped_column(String(500), default="")
    # The service account's password, sealed (kernel SecretBox); written as `bind_password`.
    bind_secret: Mapped[str | None] = mapped_column(Text)
    user_base_dn: Mapped[str] = mapped_column(String(500))
    user_filter: Mapped[str] = mapped_column(String(500), default="(objectClass=inetOrgPerson)")
    group_base_dn: Mapped[str] = mapped_column(String(500), default="")
    group_filter: Mapped[str] = mapped_column(String(500), default="(objectClass=groupOfNames)")
    attributes: Mapped[dict[str, str]] = mapped_column(JsonType, default=dict)
    group_roles: Mapped[dict[str, list[str]]] = mapped_column(JsonType, default=dict)
    default_roles: Mapped[list[str]] = mapped_column(JsonType, default=list)
    disabled_attribute: Mapped[str] = mapped_column(String(100), default="")
    disabled_value: Mapped[str] = mapped_column(String(200), default="")
    sign_in: Mapped[bool] = mapped_column(Boolean, default=True)
    schedule: Mapped[str] = mapped_column(String(100), default="")  # cron, UTC; empty: on demand only
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_sync_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_sync_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_sync_status: Mapped[str | None] = mapped_column(String(16))  # ok | failed | running
    last_sync_result: Mapped[dict[str, object] | None] = mapped_column(JsonType)
    highwater: Mapped[str | None] = mapped_column(String(64))  # modifyTimestamp / usnChanged of the last full pass
    last_test_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_test_result: Mapped[dict[str, object] | None] = mapped_column(JsonType)


class DirectoryAccount(Base):
    """A NEXUS user whose life a directory manages (one per user)."""

    __tablename__ = "identity_directory_account"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)  # the user's id
    org_id: Mapped[str] = mapped_column(IdType)
    source: Mapped[str] = mapped_column(String(8))  # scim | ldap
    connection_id: Mapped[str | None] = mapped_column(IdType)
    user_name: Mapped[str] = mapped_column(String(320))
    user_name_ci: Mapped[str] = mapped_column(String(320))
    external_id: Mapped[str | None] = mapped_column(String(500))
    dn: Mapped[str | None] = mapped_column(String(1000))
    data: Mapped[dict[str, object]] = mapped_column(JsonType, default=dict)
    granted_roles: Mapped[list[str]] = mapped_column(JsonType, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    last_seen_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        UniqueConstraint("org_id", "source", "user_name_ci", name="uq_identity_directory_account_name"),
        Index("ix_identity_directory_account_conn", "org_id", "connection_id"),
    )


class DirectoryGroup(Record, Base):
    """A group pushed by SCIM or read from LDAP; its `roles` are granted to its members."""

    __tablename__ = "identity_directory_group"
    source: Mapped[str] = mapped_column(String(8))  # scim | ldap
    connection_id: Mapped[str | None] = mapped_column(IdType)
    display_name: Mapped[str] = mapped_column(String(500))
    display_name_ci: Mapped[str] = mapped_column(String(500))
    external_id: Mapped[str | None] = mapped_column(String(500))
    dn: Mapped[str | None] = mapped_column(String(1000))
    roles: Mapped[list[str]] = mapped_column(JsonType, default=list)
    data: Mapped[dict[str, object]] = mapped_column(JsonType, default=dict)
    member_count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_identity_directory_group_name", "org_id", "source", "display_name_ci"),)


class DirectoryMember(Base):
    __tablename__ = "identity_directory_member"
    group_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    display: Mapped[str | None] = mapped_column(String(500))  # what a SCIM client calls the member

    __table_args__ = (Index("ix_identity_directory_member_user", "org_id", "user_id"),)


class ScimAttr(Base):
    """One attribute value of a SCIM resource, so that filters and sorting are plain
    parameterised SQL on both SQLite and PostgreSQL. `item` numbers the entries of a
    multi-valued attribute (0 for a single value); each entry also has a marker row with
    the attribute's own path, which correlates `emails[type eq "work" and value co "x"]`."""

    __tablename__ = "identity_scim_attr"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(IdType)
    resource_id: Mapped[str] = mapped_column(IdType)
    rtype: Mapped[str] = mapped_column(String(8))  # User | Group
    path: Mapped[str] = mapped_column(String(300))
    item: Mapped[int] = mapped_column(Integer, default=0)
    val: Mapped[str | None] = mapped_column(Text)
    val_ci: Mapped[str | None] = mapped_column(Text)
    num: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_identity_scim_attr_lookup", "org_id", "rtype", "path", "val_ci"),
        Index("ix_identity_scim_attr_resource", "resource_id", "path"),
    )
