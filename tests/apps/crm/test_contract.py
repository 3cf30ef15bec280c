"""Every CRM resource passes the kernel's contract battery on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from nexus.kernel.http.app import Nexus
from tests.apps.crm.helpers import CRM, make_company, make_contact, make_deal, make_pipeline
from tests.contract import ResourceContract
from tests.factories import Actor, new_org

BAD_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


class _PerOrg(ResourceContract):
    """Contracts whose records need others first (a pipeline, a deal...), made once per org."""

    made: ClassVar[dict[str, dict[str, Any]]]

    async def prerequisites(self, actor: Actor) -> dict[str, Any]:
        raise NotImplementedError

    async def payload(self, actor: Actor, n: int = 0) -> dict[str, Any]:
        if actor.org_id not in self.made:
            self.made[actor.org_id] = await self.prerequisites(actor)
        return {**await super().payload(actor, n), **self.made[actor.org_id]}


class TestContacts(ResourceContract):
    path = f"{CRM}/contacts"
    valid = {"first_name": "Ada", "email": "ada@example.com", "tags": ["vip"]}
    update = {"job_title": "Chief Analyst", "last_name": "Lovelace"}
    unique_field = "email"
    invalid = [({"email": "not-an-email", "first_name": "x"}, "/email"), ({"first_name": "x", "company_id": BAD_ID},
               "/company_id"), ({"first_name": "x", "phone": "call me"}, "/phone"), ({}, "")]


class TestCompanies(ResourceContract):
    path = f"{CRM}/companies"
    valid = {"name": "Acme", "industry": "Tools"}
    update = {"industry": "Rockets", "domain": "acme.example"}
    unique_field = "name"
    invalid = [({"name": ""}, "/name"), ({"name": "x", "parent_id": BAD_ID}, "/parent_id"),
               ({"name": "x", "domain": "not a domain"}, "/domain")]


class TestLeads(ResourceContract):
    path = f"{CRM}/leads"
    valid = {"name": "Grace Hopper", "company_name": "Navy", "source": "event"}
    update = {"territory": "EMEA", "message": "Wants a demo"}
    unique_field = "name"
    invalid = [({"name": ""}, "/name"), ({"name": "x", "amount": "-5"}, "/amount"),
               ({"name": "x", "currency": "EURO"}, "/currency")]


class TestPipelines(ResourceContract):
    path = f"{CRM}/pipelines"
    valid = {"name": "New business"}
    update = {"name": "Renewals", "description": "Existing customers"}
    invalid = [({"name": ""}, "/name")]


class TestStages(_PerOrg):
    path = f"{CRM}/stages"
    made: ClassVar[dict[str, dict[str, Any]]] = {}
    valid = {"name": "Qualified", "probability": 20, "position": 1}
    update = {"probability": 35, "name": "Qualified lead"}
    importable = False
    invalid = [({"name": "x", "pipeline_id": BAD_ID}, "/pipeline_id"), ({"name": "x", "probability": 120}, "/probability"),
               ({"name": "x", "kind": "maybe"}, "/kind")]

    async def prerequisites(self, actor: Actor) -> dict[str, Any]:
        return {"pipeline_id": (await make_pipeline(actor, stages=()))["id"]}


class TestDeals(_PerOrg):
    path = f"{CRM}/deals"
    made: ClassVar[dict[str, dict[str, Any]]] = {}
    valid = {"title": "Fleet renewal", "amount": "1500.00", "currency": "EUR", "expected_close_date": "2026-12-31"}
    update = {"amount": "2500.50", "probability": 40}
    importable = False
    invalid = [({"title": ""}, "/title"), ({"title": "x", "amount": "1.234"}, "/amount"),
               ({"title": "x", "amount": "NaN"}, "/amount"), ({"title": "x", "currency": "12"}, "/currency"),
               ({"title": "x", "probability": 101}, "/probability"), ({"title": "x", "stage_id": BAD_ID}, "/stage_id"),
               ({"title": "x", "expected_close_date": "soon"}, "/expected_close_date")]

    async def prerequisites(self, actor: Actor) -> dict[str, Any]:
        pipeline = await make_pipeline(actor)
        return {"pipeline_id": pipeline["id"]}


class TestProducts(ResourceContract):
    path = f"{CRM}/products"
    valid = {"name": "Seat licence", "price": "99.00", "currency": "EUR", "sku": "SEAT"}
    update = {"price": "109.00"}
    invalid = [({"name": ""}, "/name"), ({"name": "x", "price": "-1"}, "/price")]


class TestLineItems(_PerOrg):
    path = f"{CRM}/line-items"
    made: ClassVar[dict[str, dict[str, Any]]] = {}
    valid = {"name": "Seats", "quantity": "10.000", "unit_price": "99.00", "discount_percent": "10.00"}
    update = {"quantity": "12.000"}
    importable = False
    invalid = [({"deal_id": BAD_ID, "name": "x"}, "/deal_id"), ({"name": "x", "quantity": "0"}, "/quantity"),
               ({"name": "x", "discount_percent": "101"}, "/discount_percent")]

    async def prerequisites(self, actor: Actor) -> dict[str, Any]:
        await make_pipeline(actor)
        return {"deal_id": (await make_deal(actor))["id"]}


class TestActivities(_PerOrg):
    path = f"{CRM}/activities"
    made: ClassVar[dict[str, dict[str, Any]]] = {}
    valid = {"kind": "call", "subject": "Intro call", "duration_minutes": 15}
    update = {"subject": "Intro call (rescheduled)"}
    importable = False
    invalid = [({"kind": "fax", "subject": "x"}, "/kind"), ({"kind": "call", "subject": ""}, "/subject"),
               ({"kind": "call", "subject": "x", "contact_id": BAD_ID}, "/contact_id")]

    async def prerequisites(self, actor: Actor) -> dict[str, Any]:
        return {"contact_id": (await make_contact(actor))["id"],
                "company_id": (await make_company(actor))["id"]}


class TestTags(ResourceContract):
    path = f"{CRM}/tags"
    valid = {"name": "vip", "color": "#ff0000"}
    update = {"color": "#00ff00"}
    unique_field = "name"
    invalid = [({"name": ""}, "/name"), ({"name": "x", "color": "red"}, "/color")]


class TestRates(ResourceContract):
    path = f"{CRM}/rates"
    valid = {"currency": "EUR", "rate": "1.10000000", "valid_from": "2026-01-01"}
    update = {"rate": "1.20000000"}
    invalid = [({"currency": "EUR", "rate": "0", "valid_from": "2026-01-01"}, "/rate"),
               ({"currency": "EU", "rate": "1", "valid_from": "2026-01-01"}, "/currency")]


class TestAssignmentRules(_PerOrg):
    path = f"{CRM}/assignment-rules"
    made: ClassVar[dict[str, dict[str, Any]]] = {}
    valid = {"name": "EMEA", "field": "territory", "value": "EMEA"}
    update = {"name": "Europe", "position": 2}
    importable = False
    invalid = [({"name": "x", "user_ids": [BAD_ID]}, "/user_ids/0"), ({"name": "x", "user_ids": []}, "/user_ids")]

    async def prerequisites(self, actor: Actor) -> dict[str, Any]:
        return {"user_ids": [actor.user_id]}


class TestWebForms(ResourceContract):
    path = f"{CRM}/web-forms"
    valid = {"name": "Contact us", "allowed_origins": ["https://www.example.com"]}
    update = {"name": "Contact sales", "min_fill_seconds": 5}
    importable = False
    invalid = [({"name": "x", "allowed_origins": ["javascript:alert(1)"]}, "/allowed_origins/0"),
               ({"name": "x", "allowed_origins": []}, "/allowed_origins")]


class TestCustomFields(ResourceContract):
    path = "/api/v1/customfields/fields"
    valid = {"resource": "crm.contacts", "name": "shoe_size", "label": "Shoe size", "type": "number"}
    update = {"label": "Shoe size (EU)", "required": False}
    importable = False
    invalid = [({"resource": "crm.contacts", "name": "Bad Name", "label": "x", "type": "text"}, "/name"),
               ({"resource": "crm.nothing", "name": "x", "label": "x", "type": "text"}, "/resource"),
               ({"resource": "tasks.tasks", "name": "x", "label": "x", "type": "text"}, "/resource"),
               ({"resource": "crm.contacts", "name": "email", "label": "x", "type": "text"}, "/name")]

    async def payload(self, actor: Actor, n: int = 0) -> dict[str, Any]:
        return {**self.valid, "name": f"f{n}_{actor.org_slug.replace('-', '_')}"}

    async def test_viewer_reads_but_cannot_write(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        """Definitions are admin-only (a privileged app): members and viewers get 403 on the
        API and see the fields through /api/v1/meta instead (test_custom_fields.py)."""
        owner = await new_org(client, nx)
        rec = await self.create(owner)
        for role in ("viewer", "member"):
            someone = await owner.add_user([role])
            assert (await someone.get(f"{self.path}/{rec['id']}")).status_code == 403
            assert (await someone.post(self.path, json=await self.payload(owner, 9))).status_code == 403
            assert (await someone.patch(f"{self.path}/{rec['id']}", json=self.update)).status_code == 403
            assert (await someone.delete(f"{self.path}/{rec['id']}")).status_code == 403
