"""CRM tables. Every business record is a kernel `Record`; the `custom` column holds the
org's custom fields (kernel/customfields.py) and `*_norm` columns the normalised keys that
duplicate detection looks up by index."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, Index, Integer, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from nexus.kernel.db.schema import Base, IdType, JsonType, Record, Timestamp

Money = Numeric(18, 2)
_LIVE = text("deleted_at IS NULL")


class Company(Record, Base):
    __tablename__ = "crm_company"
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253))
    parent_id: Mapped[str | None] = mapped_column(IdType)
    industry: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    website: Mapped[str] = mapped_column(String(500), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[str | None] = mapped_column(IdType)
    tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    custom: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    name_norm: Mapped[str] = mapped_column(String(200), default="")
    domain_norm: Mapped[str] = mapped_column(String(253), default="")
    phone_norm: Mapped[str] = mapped_column(String(32), default="")

    __table_args__ = (
        Index("ix_crm_company_org_created", "org_id", "created_at"),
        Index("ix_crm_company_name_norm", "org_id", "name_norm"),
        Index("ix_crm_company_domain_norm", "org_id", "domain_norm"),
        Index("ix_crm_company_parent", "org_id", "parent_id"),
    )


class Contact(Record, Base):
    __tablename__ = "crm_contact"
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    name: Mapped[str] = mapped_column(String(201), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    emails: Mapped[list[str]] = mapped_column(JsonType, default=list)
    phone: Mapped[str | None] = mapped_column(String(64))
    phones: Mapped[list[str]] = mapped_column(JsonType, default=list)
    job_title: Mapped[str] = mapped_column(String(200), default="")
    company_id: Mapped[str | None] = mapped_column(IdType)
    owner_id: Mapped[str | None] = mapped_column(IdType)
    address: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    custom: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    email_norm: Mapped[str] = mapped_column(String(320), default="")
    phone_norm: Mapped[str] = mapped_column(String(32), default="")
    name_norm: Mapped[str] = mapped_column(String(201), default="")

    __table_args__ = (
        Index("ix_crm_contact_org_created", "org_id", "created_at"),
        Index("ix_crm_contact_email_norm", "org_id", "email_norm"),
        Index("ix_crm_contact_phone_norm", "org_id", "phone_norm"),
        Index("ix_crm_contact_name_norm", "org_id", "name_norm"),
        Index("ix_crm_contact_company", "org_id", "company_id"),
    )


class Lead(Record, Base):
    __tablename__ = "crm_lead"
    name: Mapped[str] = mapped_column(String(200))
    company_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    website: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(64), default="manual")
    territory: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="new")  # new | qualified | disqualified | converted
    owner_id: Mapped[str | None] = mapped_column(IdType)
    disqualify_reason: Mapped[str] = mapped_column(String(500), default="")
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    converted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    contact_id: Mapped[str | None] = mapped_column(IdType)
    company_id: Mapped[str | None] = mapped_column(IdType)
    deal_id: Mapped[str | None] = mapped_column(IdType)
    tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    custom: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    email_norm: Mapped[str] = mapped_column(String(320), default="")
    phone_norm: Mapped[str] = mapped_column(String(32), default="")
    name_norm: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (
        Index("ix_crm_lead_org_created", "org_id", "created_at"),
        Index("ix_crm_lead_email_norm", "org_id", "email_norm"),
        Index("ix_crm_lead_phone_norm", "org_id", "phone_norm"),
        Index("ix_crm_lead_status", "org_id", "status", "owner_id"),
    )


class Pipeline(Record, Base):
    __tablename__ = "crm_pipeline"
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class Stage(Record, Base):
    __tablename__ = "crm_stage"
    pipeline_id: Mapped[str] = mapped_column(IdType)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    probability: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(8), default="open")  # open | won | lost

    __table_args__ = (
        Index("ix_crm_stage_org_created", "org_id", "created_at"),
        Index("ix_crm_stage_pipeline", "org_id", "pipeline_id", "position"),
    )


class Deal(Record, Base):
    __tablename__ = "crm_deal"
    title: Mapped[str] = mapped_column(String(300))
    amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    probability: Mapped[int] = mapped_column(Integer, default=0)
    owner_id: Mapped[str | None] = mapped_column(IdType)
    pipeline_id: Mapped[str] = mapped_column(IdType)
    stage_id: Mapped[str] = mapped_column(IdType)
    status: Mapped[str] = mapped_column(String(8), default="open")  # open | won | lost (from the stage's kind)
    committed: Mapped[bool] = mapped_column(Boolean, default=False)  # in the owner's commit forecast
    company_id: Mapped[str | None] = mapped_column(IdType)
    contact_id: Mapped[str | None] = mapped_column(IdType)
    lead_id: Mapped[str | None] = mapped_column(IdType)
    description: Mapped[str] = mapped_column(Text, default="")
    stage_entered_at: Mapped[datetime | None] = mapped_column(Timestamp)
    closed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    lost_reason: Mapped[str] = mapped_column(String(500), default="")
    won_reason: Mapped[str] = mapped_column(String(500), default="")
    tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    custom: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)

    __table_args__ = (
        Index("ix_crm_deal_org_created", "org_id", "created_at"),
        # The pipeline board: one column's cards, newest move first, and its totals.
        Index("ix_crm_deal_board", "org_id", "stage_id", "updated_at", "id", postgresql_where=_LIVE,
              sqlite_where=_LIVE),
        Index("ix_crm_deal_board_totals", "org_id", "pipeline_id", "stage_id", "currency", "amount", "probability",
              postgresql_where=_LIVE, sqlite_where=_LIVE),
        # The forecast: open deals by expected close date, won deals by close date.
        Index("ix_crm_deal_forecast", "org_id", "status", "expected_close_date", "owner_id", "pipeline_id",
              "currency", "committed", "amount", "probability", postgresql_where=_LIVE, sqlite_where=_LIVE),
        Index("ix_crm_deal_closed", "org_id", "status", "closed_at", "owner_id", "pipeline_id", "currency", "amount",
              postgresql_where=_LIVE, sqlite_where=_LIVE),
        Index("ix_crm_deal_company", "org_id", "company_id"),
        Index("ix_crm_deal_contact", "org_id", "contact_id"),
        Index("ix_crm_deal_owner", "org_id", "owner_id", "status"),
    )


class StageHistory(Base):
    """One row per stay of a deal in a stage: `left_at` is null while it is there."""

    __tablename__ = "crm_stage_history"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    deal_id: Mapped[str] = mapped_column(IdType)
    pipeline_id: Mapped[str] = mapped_column(IdType)
    stage_id: Mapped[str] = mapped_column(IdType)
    entered_at: Mapped[datetime] = mapped_column(Timestamp)
    left_at: Mapped[datetime | None] = mapped_column(Timestamp)
    entered_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_crm_stage_history_deal", "org_id", "deal_id", "entered_at"),
        Index("ix_crm_stage_history_stage", "org_id", "pipeline_id", "stage_id"),
    )


class Product(Record, Base):
    __tablename__ = "crm_product"
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class LineItem(Record, Base):
    __tablename__ = "crm_line_item"
    deal_id: Mapped[str] = mapped_column(IdType)
    product_id: Mapped[str | None] = mapped_column(IdType)
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 3), default=Decimal("1"))
    unit_price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"))
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))

    __table_args__ = (
        Index("ix_crm_line_item_org_created", "org_id", "created_at"),
        Index("ix_crm_line_item_deal", "org_id", "deal_id"),
    )


class Activity(Record, Base):
    __tablename__ = "crm_activity"
    kind: Mapped[str] = mapped_column(String(8))  # call | meeting | email | note | task
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column(Timestamp)
    due_at: Mapped[datetime | None] = mapped_column(Timestamp)
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    owner_id: Mapped[str | None] = mapped_column(IdType)
    deal_id: Mapped[str | None] = mapped_column(IdType)
    contact_id: Mapped[str | None] = mapped_column(IdType)
    company_id: Mapped[str | None] = mapped_column(IdType)
    lead_id: Mapped[str | None] = mapped_column(IdType)
    task_id: Mapped[str | None] = mapped_column(IdType)
    done: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_crm_activity_org_created", "org_id", "created_at"),
        Index("ix_crm_activity_deal", "org_id", "deal_id", "occurred_at"),
        Index("ix_crm_activity_contact", "org_id", "contact_id", "occurred_at"),
        Index("ix_crm_activity_company", "org_id", "company_id", "occurred_at"),
        Index("ix_crm_activity_owner", "org_id", "owner_id", "kind", "occurred_at"),
        Index("ix_crm_activity_task", "org_id", "task_id"),
    )


class Tag(Record, Base):
    __tablename__ = "crm_tag"
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str] = mapped_column(String(16), default="#64748b")

    __table_args__ = (
        Index("ix_crm_tag_org_created", "org_id", "created_at"),
        Index("uq_crm_tag_org_name", "org_id", "name", unique=True, sqlite_where=_LIVE, postgresql_where=_LIVE),
    )


class ExchangeRate(Record, Base):
    """`rate` units of the org currency buy one unit of `currency`, from `valid_from` on."""

    __tablename__ = "crm_exchange_rate"
    currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    valid_from: Mapped[date] = mapped_column(Date)

    __table_args__ = (
        Index("ix_crm_exchange_rate_org_created", "org_id", "created_at"),
        Index("ix_crm_exchange_rate_lookup", "org_id", "currency", "valid_from"),
    )


class Settings(Record, Base):
    """One row per org: its reporting currency and lead assignment state."""

    __tablename__ = "crm_settings"
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    fiscal_year_start_month: Mapped[int] = mapped_column(Integer, default=1)


class AssignmentRule(Record, Base):
    """New leads go to the first active rule (by position) whose condition matches: either
    round-robin over `user_ids`, or everyone matching `field` = `value` goes to `user_ids`
    (round-robin among them too)."""

    __tablename__ = "crm_assignment_rule"
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    field: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(String(200))
    user_ids: Mapped[list[str]] = mapped_column(JsonType, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    cursor: Mapped[int] = mapped_column(Integer, default=0)


class WebForm(Record, Base):
    """A website form that creates leads: public, addressed by `token`, limited to origins."""

    __tablename__ = "crm_web_form"
    name: Mapped[str] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(String(64))
    allowed_origins: Mapped[list[str]] = mapped_column(JsonType, default=list)
    source: Mapped[str] = mapped_column(String(64), default="web")
    min_fill_seconds: Mapped[int] = mapped_column(Integer, default=3)
    rate_per_hour: Mapped[int] = mapped_column(Integer, default=20)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        Index("ix_crm_web_form_org_created", "org_id", "created_at"),
        Index("uq_crm_web_form_token", "token", unique=True),
    )


class TimelineEntry(Base):
    """What happened to a contact, company or deal, written by event subscribers.
    `event_id` + `subject_id` is unique, so a redelivered event writes nothing twice."""

    __tablename__ = "crm_timeline"
    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    org_id: Mapped[str] = mapped_column(IdType)
    subject_type: Mapped[str] = mapped_column(String(16))  # contact | company | deal
    subject_id: Mapped[str] = mapped_column(IdType)
    at: Mapped[datetime] = mapped_column(Timestamp)
    kind: Mapped[str] = mapped_column(String(32))  # activity.call, task, change, stage, won, lost, merge…
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    ref_type: Mapped[str | None] = mapped_column(String(64))  # e.g. crm.activities, tasks.tasks
    ref_id: Mapped[str | None] = mapped_column(String(64))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[Any | None] = mapped_column(JsonType)

    __table_args__ = (
        Index("ix_crm_timeline_subject", "org_id", "subject_id", "at", "id"),
        Index("uq_crm_timeline_event", "org_id", "subject_id", "event_id", unique=True),
        Index("ix_crm_timeline_ref", "org_id", "ref_id"),
    )
