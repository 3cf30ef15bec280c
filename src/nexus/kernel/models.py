"""The kernel's own tables: the audit trail, the event outbox and idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nexus.kernel.db.schema import Base, IdType, JsonType, Record, Timestamp


class AuditEntry(Base):
    __tablename__ = "kernel_audit"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    at: Mapped[datetime] = mapped_column(Timestamp)
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))
    app: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    before: Mapped[Any | None] = mapped_column(JsonType)
    after: Mapped[Any | None] = mapped_column(JsonType)
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    # Sealed by one background sealer in id order: seq numbers the chain and hash is
    # sha256(previous hash + this entry), so an edited or deleted entry breaks the chain.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_kernel_audit_org_record", "org_id", "record_id", "at"),
        Index("ix_kernel_audit_org_at", "org_id", "at"),
        Index("ix_kernel_audit_unsealed", "seq", "id"),
    )


class AuditHead(Base):
    """The last sealed link of the audit chain, so cutting entries off the end is detected too."""

    __tablename__ = "kernel_audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class OutboxEvent(Base):
    __tablename__ = "kernel_outbox"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    type: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(Timestamp)
    data: Mapped[Any] = mapped_column(JsonType)
    actor_id: Mapped[str | None] = mapped_column(String(64))
    dispatched_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Assigned by the single dispatcher in dispatch order: readers tail by position, which
    # (unlike ids made in several processes) never lets a late commit slip behind a cursor.
    position: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_kernel_outbox_pending", "dispatched_at", "id"),
        Index("ix_kernel_outbox_org_position", "org_id", "position"),
    )


class EventConsumption(Base):
    """Which consumer has handled which event: the kernel's dedup for at-least-once delivery."""

    __tablename__ = "kernel_event_consumption"
    consumer: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    at: Mapped[datetime] = mapped_column(Timestamp)


class Lease(Base):
    """A named lease that one process holds at a time (the outbox dispatcher, schedulers)."""

    __tablename__ = "kernel_lease"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(Timestamp)


class Notification(Base):
    """An in-app notification for one user (raised by apps through UnitOfWork.notify)."""

    __tablename__ = "kernel_notification"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    user_id: Mapped[str] = mapped_column(IdType)
    type: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[Any | None] = mapped_column(JsonType)
    actor_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    read_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_kernel_notification_user", "org_id", "user_id", "read_at", "id"),)


class NotificationPreference(Base):
    """Per user and notification type: whether it appears in the app (and, with Mail, by email)."""

    __tablename__ = "kernel_notification_pref"
    org_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    type: Mapped[str] = mapped_column(String(200), primary_key=True)
    in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[bool] = mapped_column(Boolean, default=False)


class Webhook(Record, Base):
    """A webhook subscription of an org (the resource /api/v1/webhooks/subscriptions)."""

    __tablename__ = "kernel_webhook"
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[str]] = mapped_column(JsonType, default=list)
    secret_enc: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)


class WebhookDelivery(Base):
    """One event sent (or to be sent) to one webhook: the delivery log."""

    __tablename__ = "kernel_webhook_delivery"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    webhook_id: Mapped[str] = mapped_column(IdType)
    event_id: Mapped[str] = mapped_column(IdType)
    event_type: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|succeeded|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)  # every attempt, newest last
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (
        Index("ix_kernel_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_kernel_webhook_delivery_hook", "org_id", "webhook_id", "id"),
    )


class IdempotencyRecord(Base):
    __tablename__ = "kernel_idempotency"
    org_id: Mapped[str] = mapped_column(IdType, primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    headers: Mapped[Any] = mapped_column(JsonType)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    method_path: Mapped[str] = mapped_column(Text)
