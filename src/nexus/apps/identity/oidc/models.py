"""Tables of the OpenID Connect provider: clients, signing keys, codes, grants, consents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nexus.kernel.db.schema import Base, IdType, JsonType, Record, Timestamp


class OAuthClient(Record, Base):
    """A relying party registered by an org admin (a declared resource)."""

    __tablename__ = "identity_oauth_client"
    name: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_type: Mapped[str] = mapped_column(String(16))  # confidential | public
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    redirect_uris: Mapped[list[str]] = mapped_column(JsonType, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JsonType, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JsonType, default=list)
    scopes: Mapped[list[str]] = mapped_column(JsonType, default=list)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    service_user_id: Mapped[str | None] = mapped_column(IdType)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(Timestamp)


class SigningKey(Base):
    """An installation-wide signing key; the private half is sealed with the SecretBox."""

    __tablename__ = "identity_oidc_key"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the JWK kid
    alg: Mapped[str] = mapped_column(String(16))
    private_sealed: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    retired_at: Mapped[datetime | None] = mapped_column(Timestamp)  # no longer signs
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)  # no longer verifies (leaves the JWKS)


class AuthorizationCode(Base):
    __tablename__ = "identity_oauth_code"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the code
    org_id: Mapped[str] = mapped_column(IdType)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(IdType)
    session_id: Mapped[str | None] = mapped_column(IdType)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(2000))
    nonce: Mapped[str | None] = mapped_column(String(500))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    auth_time: Mapped[datetime] = mapped_column(Timestamp)
    issuer: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    grant_id: Mapped[str | None] = mapped_column(IdType)


class OAuthGrant(Base):
    """A token family: everything issued from one code or one client-credentials request.
    Revoking it (code replay, refresh-token reuse, revocation) stops all of its tokens."""

    __tablename__ = "identity_oauth_grant"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(IdType)
    session_id: Mapped[str | None] = mapped_column(IdType)
    scope: Mapped[str] = mapped_column(String(2000))
    issuer: Mapped[str] = mapped_column(String(500))
    auth_time: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_reason: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_identity_oauth_grant_user", "org_id", "user_id"),)


class OAuthRefreshToken(Base):
    __tablename__ = "identity_oauth_refresh"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    grant_id: Mapped[str] = mapped_column(IdType, index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)


class OAuthConsent(Base):
    """Scopes a user agreed to give a client; asked again only for more."""

    __tablename__ = "identity_oauth_consent"
    org_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scopes: Mapped[list[str]] = mapped_column(JsonType, default=list)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
