"""Tables of multi-factor sign-in and account security (imported by identity/models.py so
that Alembic sees them). Secrets are never stored in the clear: TOTP seeds are sealed with
the kernel's SecretBox, one-time codes and tokens are stored as hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nexus.kernel.db.schema import Base, IdType, JsonType, Timestamp


class MfaFactor(Base):
    """A second factor of a user: a TOTP authenticator app or a WebAuthn passkey."""

    __tablename__ = "identity_mfa_factor"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    user_id: Mapped[str] = mapped_column(IdType)
    kind: Mapped[str] = mapped_column(String(16))  # totp | webauthn
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    confirmed_at: Mapped[datetime | None] = mapped_column(Timestamp)  # TOTP: after the first good code
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # TOTP: the sealed base32 seed, and the last accepted time step (a code is good once).
    secret_sealed: Mapped[str | None] = mapped_column(String(500))
    last_step: Mapped[int | None] = mapped_column(Integer)
    # WebAuthn: the credential as the authenticator registered it.
    credential_id: Mapped[str | None] = mapped_column(String(1400))  # base64url
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    transports: Mapped[list[str]] = mapped_column(JsonType, default=list)
    discoverable: Mapped[bool] = mapped_column(Boolean, default=False)
    aaguid: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_identity_mfa_factor_user", "org_id", "user_id"),
        UniqueConstraint("credential_id", name="uq_identity_mfa_factor_credential"),
    )


class RecoveryCode(Base):
    __tablename__ = "identity_recovery_code"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    user_id: Mapped[str] = mapped_column(IdType, index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)


class AuthChallenge(Base):
    """A short-lived, single-use step of a sign-in: the MFA token handed out after the
    password, a WebAuthn challenge, or a pending TOTP enrolment."""

    __tablename__ = "identity_auth_challenge"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))  # mfa | mfa_enrol | webauthn_login | webauthn_register
    org_id: Mapped[str | None] = mapped_column(IdType)
    user_id: Mapped[str | None] = mapped_column(IdType)
    secret_hash: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, object]] = mapped_column(JsonType, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    client_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class SecurityPolicy(Base):
    """An org's sign-in and password rules (absent: the defaults in security/policy.py)."""

    __tablename__ = "identity_security_policy"
    org_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    require_mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    password_min_length: Mapped[int] = mapped_column(Integer, default=10)
    password_history: Mapped[int] = mapped_column(Integer, default=5)
    password_block_common: Mapped[bool] = mapped_column(Boolean, default=True)
    step_up_max_age: Mapped[int] = mapped_column(Integer, default=600)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_by: Mapped[str | None] = mapped_column(IdType)


class PasswordHistory(Base):
    __tablename__ = "identity_password_history"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    user_id: Mapped[str] = mapped_column(IdType, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class PasswordReset(Base):
    __tablename__ = "identity_password_reset"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    user_id: Mapped[str] = mapped_column(IdType, index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    client_addr: Mapped[str | None] = mapped_column(String(64))


class SignInEvent(Base):
    """Sign-in history: every attempt, good or bad, with how and from where."""

    __tablename__ = "identity_signin_event"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    user_id: Mapped[str | None] = mapped_column(IdType)
    at: Mapped[datetime] = mapped_column(Timestamp)
    method: Mapped[str] = mapped_column(String(32))  # password | totp | recovery_code | passkey | mfa_enrol …
    success: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    session_id: Mapped[str | None] = mapped_column(IdType)

    __table_args__ = (Index("ix_identity_signin_event_user", "org_id", "user_id", "at"),)
