"""What the CRM API takes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from nexus.kernel.schema_base import Schema


def _currency(v: str) -> str:
    v = v.upper()
    if len(v) != 3 or not v.isalpha() or not v.isascii():
        raise ValueError("an ISO 4217 code such as EUR or USD is expected")
    return v


def _domain(v: str | None) -> str | None:
    if v is None:
        return v
    low = v.strip().lower()
    for prefix in ("https://", "http://"):
        if low.startswith(prefix):
            low = low[len(prefix):]
    low = low.split("/", 1)[0].removeprefix("www.")
    if low and (" " in low or "." not in low):
        raise ValueError("a domain such as example.com is expected")
    return low or None


Currency = Annotated[str, StringConstraints(min_length=3, max_length=3), AfterValidator(_currency)]
Money = Annotated[Decimal, Field(max_digits=18, decimal_places=2, ge=0, allow_inf_nan=False)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(max_length=200)]
Text = Annotated[str, StringConstraints(max_length=100_000)]
Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Phone = Annotated[str, StringConstraints(max_length=64, pattern=r"^[0-9+()./\- x]*$")]
TagName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Tags = Annotated[list[TagName], Field(max_length=50)]
Domain = Annotated[str | None, StringConstraints(max_length=253), AfterValidator(_domain)]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
StageKind = Literal["open", "won", "lost"]
ActivityKind = Literal["call", "meeting", "email", "note", "task"]


class CompanyCreate(Schema):
    name: Name
    domain: Domain = None
    parent_id: str | None = Field(default=None, description="The parent company (group, holding)")
    industry: Annotated[str, StringConstraints(max_length=100)] = ""
    phone: Phone = ""
    website: Annotated[str, StringConstraints(max_length=500)] = ""
    address: Annotated[str, StringConstraints(max_length=2000)] = ""
    owner_id: str | None = None
    tags: Tags = []


class ContactCreate(Schema):
    first_name: Annotated[str, StringConstraints(max_length=100)] = ""
    last_name: Annotated[str, StringConstraints(max_length=100)] = ""
    email: Email | None = None
    emails: Annotated[list[Email], Field(max_length=20, description="Further addresses")] = []
    phone: Phone | None = None
    phones: Annotated[list[Phone], Field(max_length=20, description="Further numbers")] = []
    job_title: Short = ""
    company_id: str | None = None
    owner_id: str | None = None
    address: Annotated[str, StringConstraints(max_length=2000)] = ""
    tags: Tags = []

    @model_validator(mode="after")
    def _named(self) -> ContactCreate:
        if not (self.first_name or self.last_name or self.email):
            raise ValueError("a contact needs a first name, a last name or an email")
        return self


class ContactUpdate(Schema):
    first_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    last_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    email: Email | None = None
    emails: Annotated[list[Email], Field(max_length=20)] | None = None
    phone: Phone | None = None
    phones: Annotated[list[Phone], Field(max_length=20)] | None = None
    job_title: Short | None = None
    company_id: str | None = None
    owner_id: str | None = None
    address: Annotated[str, StringConstraints(max_length=2000)] | None = None
    tags: Tags | None = None


class LeadCreate(Schema):
    name: Name
    company_name: Short = ""
    email: Email | None = None
    phone: Phone | None = None
    website: Annotated[str, StringConstraints(max_length=500)] = ""
    source: Annotated[str, StringConstraints(max_length=64)] = "manual"
    territory: Annotated[str, StringConstraints(max_length=64)] = ""
    message: Annotated[str, StringConstraints(max_length=10_000)] = ""
    owner_id: str | None = Field(default=None, description="Left empty, the assignment rules choose")
    amount: Money | None = None
    currency: Currency | None = None
    tags: Tags = []


class PipelineCreate(Schema):
    name: Name
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    is_default: bool = False


class StageCreate(Schema):
    pipeline_id: str
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    position: Annotated[int, Field(ge=0, le=1000)] = 0
    probability: Annotated[int, Field(ge=0, le=100, description="Default probability of deals here, percent")] = 0
    kind: StageKind = "open"


class DealCreate(Schema):
    title: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    amount: Money = Decimal("0")
    currency: Currency = "USD"
    expected_close_date: date | None = None
    probability: Annotated[int, Field(ge=0, le=100)] | None = Field(
        default=None, description="Percent; left empty, the stage's default")
    owner_id: str | None = None
    pipeline_id: str | None = Field(default=None, description="Left empty, the org's default pipeline")
    stage_id: str | None = Field(default=None, description="Left empty, the pipeline's first open stage")
    committed: bool = False
    company_id: str | None = None
    contact_id: str | None = None
    description: Text = ""
    tags: Tags = []


class DealUpdate(Schema):
    """Stage changes go through the move/win/lose/reopen actions, which keep the history."""

    title: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None
    amount: Money | None = None
    currency: Currency | None = None
    expected_close_date: date | None = None
    probability: Annotated[int, Field(ge=0, le=100)] | None = None
    owner_id: str | None = None
    committed: bool | None = None
    company_id: str | None = None
    contact_id: str | None = None
    description: Text | None = None
    tags: Tags | None = None


class ProductCreate(Schema):
    name: Name
    sku: Annotated[str, StringConstraints(max_length=64)] = ""
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    price: Money = Decimal("0")
    currency: Currency = "USD"
    active: bool = True


class LineItemCreate(Schema):
    deal_id: str
    product_id: str | None = None
    name: Annotated[str, StringConstraints(max_length=200)] = Field(
        default="", description="Left empty, the product's name")
    quantity: Annotated[Decimal, Field(max_digits=18, decimal_places=3, gt=0, allow_inf_nan=False)] = Decimal("1")
    unit_price: Money | None = Field(default=None, description="Left empty, the product's price")
    discount_percent: Annotated[Decimal, Field(max_digits=5, decimal_places=2, ge=0, le=100)] = Decimal("0")


class LineItemUpdate(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    quantity: Annotated[Decimal, Field(max_digits=18, decimal_places=3, gt=0, allow_inf_nan=False)] | None = None
    unit_price: Money | None = None
    discount_percent: Annotated[Decimal, Field(max_digits=5, decimal_places=2, ge=0, le=100)] | None = None


class ActivityCreate(Schema):
    kind: ActivityKind
    subject: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    body: Text = ""
    occurred_at: datetime | None = Field(default=None, description="Left empty, now")
    due_at: datetime | None = Field(default=None, description="For a task activity: when the task is due")
    duration_minutes: Annotated[int, Field(ge=0, le=100_000)] | None = None
    owner_id: str | None = None
    deal_id: str | None = None
    contact_id: str | None = None
    company_id: str | None = None
    lead_id: str | None = None
    done: bool = False


class ActivityUpdate(Schema):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None
    body: Text | None = None
    occurred_at: datetime | None = None
    duration_minutes: Annotated[int, Field(ge=0, le=100_000)] | None = None
    owner_id: str | None = None
    done: bool | None = None


class TagCreate(Schema):
    name: TagName
    color: Color = "#64748b"


class RateCreate(Schema):
    currency: Currency
    rate: Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=8, allow_inf_nan=False,
                                   description="Units of the org currency for one unit of `currency`")]
    valid_from: date


class AssignmentRuleCreate(Schema):
    name: Name
    position: Annotated[int, Field(ge=0, le=1000)] = 0
    field: Literal["territory", "source", "company_name", "website"] | None = Field(
        default=None, description="Match leads on this field; empty: every lead (round-robin)")
    value: Short | None = None
    user_ids: Annotated[list[str], Field(min_length=1, max_length=200)]
    active: bool = True

    @model_validator(mode="after")
    def _pair(self) -> AssignmentRuleCreate:
        if (self.field is None) != (self.value is None):
            raise ValueError("field and value go together")
        return self


class WebFormCreate(Schema):
    name: Name
    allowed_origins: Annotated[list[Annotated[str, StringConstraints(
        pattern=r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$", max_length=300)]], Field(min_length=1, max_length=20)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "web"
    min_fill_seconds: Annotated[int, Field(ge=0, le=3600)] = 3
    rate_per_hour: Annotated[int, Field(ge=1, le=10_000)] = 20
    active: bool = True


# -- actions -------------------------------------------------------------------------


class MoveInput(Schema):
    stage_id: str
    probability: Annotated[int, Field(ge=0, le=100)] | None = Field(
        default=None, description="Left empty, the new stage's default")


class WinInput(Schema):
    reason: Annotated[str, StringConstraints(max_length=500)] = ""
    stage_id: str | None = Field(default=None, description="A won stage of the pipeline; default its first")


class LoseInput(Schema):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    stage_id: str | None = None


class ReopenInput(Schema):
    stage_id: str | None = Field(default=None, description="Default: the open stage it was last in")


class DisqualifyInput(Schema):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class ConvertInput(Schema):
    create_deal: bool = True
    deal_title: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None
    # `x-reference` tells a form (the web app's action dialog) to offer a record picker.
    pipeline_id: str | None = Field(default=None, json_schema_extra={"x-reference": "crm.pipelines"})
    stage_id: str | None = Field(default=None, json_schema_extra={"x-reference": "crm.stages"})
    contact_id: str | None = Field(default=None, description="Use this contact instead of matching one",
                                   json_schema_extra={"x-reference": "crm.contacts"})
    company_id: str | None = Field(default=None, description="Use this company instead of matching one",
                                   json_schema_extra={"x-reference": "crm.companies"})


class MergeInput(Schema):
    duplicate_id: str = Field(description="The record merged into this one, then deleted")


class SettingsInput(Schema):
    currency: Currency
    fiscal_year_start_month: Annotated[int, Field(ge=1, le=12)] = 1


class WebLeadInput(Schema):
    """What a website form posts. `website_url` is the honeypot: people leave it empty."""

    name: Name
    email: Email | None = None
    phone: Phone | None = None
    company_name: Short = ""
    message: Annotated[str, StringConstraints(max_length=5000)] = ""
    website_url: Annotated[str, StringConstraints(max_length=500)] = ""
    ticket: Annotated[str, StringConstraints(max_length=200)] = Field(
        default="", description="From GET …/web-to-lead/{token}/ticket when the form was shown (minimum fill time)")
