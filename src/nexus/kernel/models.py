"""The kernel's own tables: the audit trail, the event outbox and idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, text
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


# -- search (kernel/search.py) ---------------------------------------------------------
class SearchEntry(Base):
    """One searchable record in the global search index, written from record events.

    The full-text side is dialect-specific and lives only in the migration: on SQLite an FTS5
    table `kernel_search_fts` over (title, body, scope), external content with rowid = id, kept
    in step by triggers; on PostgreSQL a `tsv` tsvector column with a GIN index."""

    __tablename__ = "kernel_search"
    # SQLite: org code | sequence | type code | public bit (kernel/search.py), so one org's
    # entries are one rowid range, newest last, and a match's type is read from its rowid.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(IdType)
    app: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(64))
    # Who may find it: `apub` (everyone who may read the resource) or the tokens of the users
    # and roles that Resource.search_visibility named.
    scope: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ux_kernel_search_record", "org_id", "app", "resource", "record_id", unique=True),
        Index("ix_kernel_search_org_recent", "org_id", "id"),
    )


class SearchCode(Base):
    """Small numbers for orgs and searchable types, kept in kernel_search ids on SQLite."""

    __tablename__ = "kernel_search_code"
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # "org" | "type"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # org id | "app.resource"
    code: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ux_kernel_search_code", "kind", "code", unique=True),)


# -- jobs and schedules (kernel/jobs.py) -------------------------------------------------


class Job(Base):
    """A durable background job: claimed by one worker at a time until `locked_until`
    (the visibility timeout), retried with back-off, dead-lettered after max_attempts."""

    __tablename__ = "kernel_job"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str | None] = mapped_column(IdType)  # None: a platform job (no org)
    name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[Any] = mapped_column(JsonType)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(16))  # queued running done failed dead cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_at: Mapped[datetime] = mapped_column(Timestamp)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None] = mapped_column(Timestamp)
    unique_key: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)


# Partial indexes: a job's row changes status a few times, and each index holds it only
# while it matters there (fewer index writes per job, smaller scans for the claim).
_QUEUED = Job.status == "queued"
_RUNNING = Job.status == "running"
_UNIQUE = Job.status.in_(["queued", "running"]) & Job.unique_key.is_not(None)
_FINISHED = Job.finished_at.is_not(None)
# Claim order: highest priority, then oldest due, then id.
Index("ix_kernel_job_claim", Job.priority.desc(), Job.run_at, Job.id, sqlite_where=_QUEUED, postgresql_where=_QUEUED)
Index("ix_kernel_job_lock", Job.locked_until, sqlite_where=_RUNNING, postgresql_where=_RUNNING)
Index("ix_kernel_job_org", Job.org_id, Job.created_at)
Index("ix_kernel_job_finished", Job.finished_at, sqlite_where=_FINISHED, postgresql_where=_FINISHED)
# A unique job exists at most once while it is waiting or running.
Index("uq_kernel_job_unique", Job.name, Job.unique_key, unique=True, sqlite_where=_UNIQUE, postgresql_where=_UNIQUE)


class JobSchedule(Base):
    """A cron schedule: whichever process first moves `next_run_at` on enqueues the job."""

    __tablename__ = "kernel_schedule"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    org_id: Mapped[str | None] = mapped_column(IdType)  # None: a platform schedule
    cron: Mapped[str] = mapped_column(String(100))
    job_name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[Any] = mapped_column(JsonType)
    next_run_at: Mapped[datetime] = mapped_column(Timestamp)
    last_run_at: Mapped[datetime | None] = mapped_column(Timestamp)


# -- blobs (kernel/blobs.py) -------------------------------------------------------------


class Blob(Base):
    """Stored content, named by its SHA-256 and shared by every ref to it (across orgs).

    Never reachable by hash alone: a caller reaches content only through a ref of its org.
    `touched_at` is the last upload of this content; garbage collection removes content
    with no refs once it is older than the grace period."""

    __tablename__ = "kernel_blob"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    touched_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_kernel_blob_touched", "touched_at"),)


class BlobRef(Base):
    """An org's use of a blob: an upload (app `blobs`) or an app record's attachment."""

    __tablename__ = "kernel_blob_ref"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    sha256: Mapped[str] = mapped_column(String(64), ForeignKey("kernel_blob.sha256"))
    app: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    created_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_kernel_blob_ref_sha256", "sha256"),
        Index("ix_kernel_blob_ref_owner", "org_id", "app", "resource", "record_id"),
    )


class EventCursor(Base):
    """How far one event consumer (a subscriber name) has read the positioned event stream."""

    __tablename__ = "kernel_event_cursor"
    consumer: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class CustomField(Record, Base):
    """A field an org adds to a resource that opted in (Resource.custom_fields): values live
    in that record's `custom` JSON column, typed and checked by kernel/customfields.py."""

    __tablename__ = "kernel_custom_field"
    resource: Mapped[str] = mapped_column(String(130))  # "app.resource"
    name: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))  # text | number | date | choice | reference
    choices: Mapped[list[str]] = mapped_column(JsonType, default=list)
    reference: Mapped[str | None] = mapped_column(String(130))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index("ix_kernel_custom_field_org_created", "org_id", "created_at"),
        Index("uq_kernel_custom_field_name", "org_id", "resource", "name", unique=True,
              sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL")),
    )
