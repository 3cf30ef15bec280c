"""CRM records, declared: the kernel gives each its list/get/create/update/delete/restore,
import/export, events and meta; the sales process adds actions on deals, leads and merges.

What configures the CRM (pipelines and stages, exchange rates, assignment rules, web forms) is
`privileged=CONFIGURATION`: every member reads it, only admins (or a role naming `crm`) change
it — as in Odoo and HubSpot, sales reps work the deals, admins shape the pipeline."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, create_model

from nexus.kernel.resources import CONFIGURATION, Action, Resource

from . import models, schemas
from .service import (
    ActivityService,
    AssignmentRuleService,
    CompanyService,
    ContactService,
    DealService,
    LeadService,
    LineItemService,
    PipelineService,
    StageService,
    WebFormService,
)

_NORM = ("email_norm", "phone_norm", "name_norm", "domain_norm")


def _dedup(model: type[schemas.Schema]) -> type[schemas.Schema]:
    """The create schema plus the one switch that creates a record duplicate detection refused."""
    field = Annotated[bool, Field(description="Create even though it looks like an existing record (409 lists "
                                              "the candidates otherwise)")]
    return create_model(model.__name__, __base__=model, allow_duplicate=(field, False))  # type: ignore[call-overload,no-any-return]


def _merge(key: str) -> Action:
    """The merge action of one resource; its input names the resource so a form offers a picker
    of the other record (`x-reference`)."""
    field = Annotated[str, Field(description="The record merged into this one, then deleted",
                                 json_schema_extra={"x-reference": key})]
    model = create_model(f"Merge{key.split('.')[1].title()}Input", __base__=schemas.MergeInput,
                         duplicate_id=(field, ...))
    return Action("merge", "merge", model, event="merged",
                  summary="Merge a duplicate into this record: its related records move here, it is deleted")

companies = Resource(
    app="crm", name="companies", model=models.Company, create=_dedup(schemas.CompanyCreate), service=CompanyService,
    entity="company", filters=("name", "domain", "parent_id", "industry", "owner_id", "tags"),
    sorts=("name", "created_at", "updated_at"), search=("name", "domain", "industry", "website"),
    default_sort="name", references={"parent_id": "crm.companies", "owner_id": "identity.users"},
    actions=(_merge("crm.companies"),), custom_fields=True,
    description="Accounts: organisations you sell to, with their hierarchy (parent company).",
)

contacts = Resource(
    app="crm", name="contacts", model=models.Contact, create=_dedup(schemas.ContactCreate),
    update=schemas.ContactUpdate, service=ContactService,
    filters=("email", "company_id", "owner_id", "tags", "last_name", "first_name", "name"),
    sorts=("name", "last_name", "created_at", "updated_at"), search=("name", "email", "job_title", "phone"),
    default_sort="name", references={"company_id": "crm.companies", "owner_id": "identity.users"},
    actions=(_merge("crm.contacts"),), custom_fields=True,
    description="People: customers, prospects and their colleagues.",
)

leads = Resource(
    app="crm", name="leads", model=models.Lead, create=_dedup(schemas.LeadCreate), service=LeadService,
    filters=("status", "source", "owner_id", "territory", "email", "tags", "converted_at"),
    sorts=("name", "created_at", "updated_at", "status"), search=("name", "company_name", "email", "message"),
    references={"owner_id": "identity.users"},
    actions=(
        Action("qualify", "qualify", summary="Mark the lead as worth pursuing", event="qualified"),
        Action("disqualify", "disqualify", schemas.DisqualifyInput, summary="Set aside, with a reason",
               event="disqualified"),
        Action("convert", "convert", schemas.ConvertInput, event="converted",
               summary="Turn into a contact, a company and a deal in one step (existing ones are reused)"),
    ),
    custom_fields=True,
    description="Prospects not yet qualified: from forms, imports, events.",
)

pipelines = Resource(
    app="crm", name="pipelines", model=models.Pipeline, create=schemas.PipelineCreate, service=PipelineService,
    filters=("is_default", "name"), sorts=("name", "created_at"), default_sort="name",
    privileged=CONFIGURATION,
    description="Sales processes, each with its ordered stages.",
)

stages = Resource(
    app="crm", name="stages", model=models.Stage, create=schemas.StageCreate, service=StageService,
    filters=("pipeline_id", "kind"), sorts=("position", "name", "created_at"), default_sort="position",
    references={"pipeline_id": "crm.pipelines"},
    privileged=CONFIGURATION,
    description="Steps of a pipeline: open, won or lost, each with a default probability.",
)

deals = Resource(
    app="crm", name="deals", model=models.Deal, create=schemas.DealCreate, update=schemas.DealUpdate,
    service=DealService,
    filters=("pipeline_id", "stage_id", "status", "owner_id", "company_id", "contact_id", "currency",
             "expected_close_date", "amount", "probability", "committed", "closed_at", "tags", "lead_id"),
    sorts=("amount", "expected_close_date", "created_at", "updated_at", "title", "probability", "closed_at"),
    search=("title", "description"),
    references={"owner_id": "identity.users", "company_id": "crm.companies", "contact_id": "crm.contacts",
                "pipeline_id": "crm.pipelines", "stage_id": "crm.stages"},
    actions=(
        Action("move", "move", schemas.MoveInput, summary="Move to another stage (the pipeline board)"),
        Action("win", "win", schemas.WinInput, summary="Close as won", event="won"),
        Action("lose", "lose", schemas.LoseInput, summary="Close as lost, with a reason", event="lost"),
        Action("reopen", "reopen", schemas.ReopenInput, summary="Reopen a won or lost deal", event="reopened"),
        _merge("crm.deals"),
    ),
    custom_fields=True,
    description="Opportunities: an amount, a close date and a stage in a pipeline.",
)

products = Resource(
    app="crm", name="products", model=models.Product, create=schemas.ProductCreate,
    filters=("active", "sku", "currency", "name"), sorts=("name", "price", "created_at"), default_sort="name",
    custom_fields=False, description="What you sell, with a list price.",
)

line_items = Resource(
    app="crm", name="line-items", model=models.LineItem, create=schemas.LineItemCreate,
    update=schemas.LineItemUpdate, service=LineItemService, entity="line_item",
    filters=("deal_id", "product_id"), sorts=("created_at", "total"), default_sort="created_at",
    references={"deal_id": "crm.deals", "product_id": "crm.products"},
    description="Products on a deal: quantity, price and discount.",
)

activities = Resource(
    app="crm", name="activities", model=models.Activity, create=schemas.ActivityCreate,
    update=schemas.ActivityUpdate, service=ActivityService, entity="activity", title_field="subject",
    filters=("kind", "owner_id", "deal_id", "contact_id", "company_id", "lead_id", "occurred_at", "done", "task_id"),
    sorts=("occurred_at", "created_at", "updated_at"), default_sort="-occurred_at",
    references={"owner_id": "identity.users", "deal_id": "crm.deals", "contact_id": "crm.contacts",
                "company_id": "crm.companies", "lead_id": "crm.leads"},
    description="Calls, meetings, e-mails, notes and tasks about deals, contacts, companies and leads.",
)

tags = Resource(
    app="crm", name="tags", model=models.Tag, create=schemas.TagCreate,
    filters=("name",), sorts=("name", "created_at"), default_sort="name",
    description="Labels for contacts, companies, leads and deals.",
)

rates = Resource(
    app="crm", name="rates", model=models.ExchangeRate, create=schemas.RateCreate, entity="rate",
    filters=("currency", "valid_from"), sorts=("valid_from", "currency", "created_at"), default_sort="-valid_from",
    privileged=CONFIGURATION,
    description="Exchange rates to the org currency, for forecasts and totals.",
)

assignment_rules = Resource(
    app="crm", name="assignment-rules", model=models.AssignmentRule, create=schemas.AssignmentRuleCreate,
    service=AssignmentRuleService, entity="assignment_rule", hidden=("cursor",),
    filters=("active", "field"), sorts=("position", "name", "created_at"), default_sort="position",
    privileged=CONFIGURATION,
    description="Who gets new leads: round-robin, or by territory or another field.",
)

web_forms = Resource(
    app="crm", name="web-forms", model=models.WebForm, create=schemas.WebFormCreate, entity="web_form",
    service=WebFormService,
    filters=("active", "source"), sorts=("name", "created_at"), default_sort="name", importable=False,
    privileged=CONFIGURATION,
    description="Website forms that create leads (public endpoint, per-form token).",
)

RESOURCES = [contacts, companies, leads, deals, pipelines, stages, products, line_items, activities, tags, rates,
             assignment_rules, web_forms]
