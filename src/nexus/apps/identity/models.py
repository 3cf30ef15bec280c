"""Identity tables. Users belong to one organisation (like Keycloak realms, ADR 0003)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexus.kernel.db.schema import Base, IdType, JsonType, Record, Timestamp


class Org(Base):
    __tablename__ = "identity_org"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")


class User(Record, Base):
    __tablename__ = "identity_user"
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | invited | deactivated
    password_hash: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    roles: Mapped[list[str]] = mapped_column(JsonType, default=list)  # role names, denormalised for display
    last_login_at: Mapped[datetime | None] = mapped_column(Timestamp)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(Timestamp)
    is_service_account: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        UniqueConstraint("org_id", "email", name="uq_identity_user_org_email"),
        Index("ix_identity_user_email", "email"),
    )


class Role(Record, Base):
    __tablename__ = "identity_role"
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="")
    permissions: Mapped[list[str]] = mapped_column(JsonType, default=list)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_identity_role_org_name"),)


class Membership(Base):
    """A role held by a user in the user's org."""

    __tablename__ = "identity_membership"
    org_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    role_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class Session(Base):
    __tablename__ = "identity_session"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    user_id: Mapped[str] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # When and how the user last proved who they are (OIDC auth_time/amr): step-up checks these.
    auth_time: Mapped[datetime | None] = mapped_column(Timestamp)
    amr: Mapped[list[str] | None] = mapped_column(JsonType)
    last_seen_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_identity_session_user", "org_id", "user_id"),)


class RefreshToken(Base):
    """One link of a session's rotation chain; presenting a used link revokes the session."""

    __tablename__ = "identity_refresh_token"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    session_id: Mapped[str] = mapped_column(IdType, index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ApiKey(Record, Base):
    __tablename__ = "identity_api_key"
    name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(IdType)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    permissions: Mapped[list[str]] = mapped_column(JsonType, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)



# Federation (SAML 2.0, external OIDC) keeps its tables in its own module.
# Directory and provisioning (SCIM, LDAP) keep their tables in their own subpackage.
from .directory.models import (  # noqa: E402,F401
    DirectoryAccount,
    DirectoryGroup,
    DirectoryMember,
    LdapConnection,
    ScimAttr,
    ScimToken,
)
from .federation.models import (  # noqa: E402,F401
    FederatedIdentity,
    FederationState,
    IdentityProvider,
    SamlKey,
    ServiceProvider,
)

# The OpenID Connect provider's tables live beside its code; imported here so Alembic sees them.
from .oidc.models import (  # noqa: E402, F401
    AuthorizationCode,
    OAuthClient,
    OAuthConsent,
    OAuthGrant,
    OAuthRefreshToken,
    SigningKey,
)

# Multi-factor and account security (identity/security/): imported so that Alembic sees them.
from .security.models import (  # noqa: E402, F401
    AuthChallenge,
    MfaFactor,
    PasswordHistory,
    PasswordReset,
    RecoveryCode,
    SecurityPolicy,
    SignInEvent,
)
