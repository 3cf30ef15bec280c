"""Federation tables: IdP connections, SP registrations, the org's SAML key pair, links
from external subjects to users, and short-lived protocol state (pending requests, replays)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexus.kernel.db.schema import Base, IdType, JsonType, Record, Timestamp


class IdentityProvider(Record, Base):
    """An external IdP an org's people sign in with: SAML 2.0 or OpenID Connect."""

    __tablename__ = "identity_fed_idp"
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    protocol: Mapped[str] = mapped_column(String(8))  # saml | oidc
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # OpenID Connect
    issuer: Mapped[str | None] = mapped_column(String(500))
    client_id: Mapped[str | None] = mapped_column(String(255))
    client_secret_sealed: Mapped[str | None] = mapped_column(Text)  # SecretBox; never returned
    scopes: Mapped[str] = mapped_column(String(500), default="openid email profile")
    # SAML 2.0: the IdP's metadata (pasted), or entity id + SSO URL + signing certificate
    saml_entity_id: Mapped[str | None] = mapped_column(String(500))
    saml_sso_url: Mapped[str | None] = mapped_column(String(1000))
    saml_certificate: Mapped[str | None] = mapped_column(Text)
    saml_metadata_xml: Mapped[str | None] = mapped_column(Text)
    allow_idp_initiated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Provisioning: which claim/attribute is the email and the name; claim value -> role
    attribute_map: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    role_map: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    default_roles: Mapped[list[str]] = mapped_column(JsonType, default=list)
    jit_provisioning: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_roles: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (UniqueConstraint("org_id", "slug", name="uq_identity_fed_idp_org_slug"),)


class ServiceProvider(Record, Base):
    """A SAML service provider that signs its users in with NEXUS as the IdP."""

    __tablename__ = "identity_fed_sp"
    name: Mapped[str] = mapped_column(String(200))
    entity_id: Mapped[str] = mapped_column(String(500))
    metadata_xml: Mapped[str] = mapped_column(Text)
    acs_url: Mapped[str | None] = mapped_column(String(1000))  # derived from the metadata, for display
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (UniqueConstraint("org_id", "entity_id", name="uq_identity_fed_sp_org_entity"),)


class SamlKey(Base):
    """The org's SAML key pair: signs AuthnRequests and IdP responses, decrypts assertions."""

    __tablename__ = "identity_fed_key"
    org_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    private_key_sealed: Mapped[str] = mapped_column(Text)
    certificate: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class FederatedIdentity(Base):
    """Which user an IdP's subject (NameID, `sub`) is, so a changed email cannot swap accounts."""

    __tablename__ = "identity_fed_link"
    idp_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    user_id: Mapped[str] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_identity_fed_link_user", "org_id", "user_id"),)


class FederationState(Base):
    """Single-use protocol state shared by every process: pending OIDC/SAML requests, and
    the IDs of assertions already consumed (the primary key makes a replay a conflict)."""

    __tablename__ = "identity_fed_state"
    handle: Mapped[str] = mapped_column(String(128), primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
