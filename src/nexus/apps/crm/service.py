"""CRM use cases: the only code that changes CRM state.

Generic create/update/delete come from the kernel's RecordService; the subclasses add the
sales process — deals moving through stages with their history, won/lost/reopened, leads
qualified and converted, duplicates detected and merged, new leads assigned.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nexus.apps.tasks.public import TaskCreate, create_task_in
from nexus.kernel.errors import Problem, validation
from nexus.kernel.ids import new_id
from nexus.kernel.jsonutil import utcnow
from nexus.kernel.records import TableSpec, UnitOfWork
from nexus.kernel.resources import RecordService

from . import models
from .rules import company_key, domain_of_email, norm_domain, norm_email, norm_name, norm_phone

CONTACT = TableSpec(models.Contact)
COMPANY = TableSpec(models.Company)
LEAD = TableSpec(models.Lead)
DEAL = TableSpec(models.Deal)
STAGE = TableSpec(models.Stage)
PIPELINE = TableSpec(models.Pipeline)
HISTORY = TableSpec(models.StageHistory)
LINE = TableSpec(models.LineItem)
ACTIVITY = TableSpec(models.Activity)
TIMELINE = TableSpec(models.TimelineEntry)
RULE = TableSpec(models.AssignmentRule)
SETTINGS = TableSpec(models.Settings)
PRODUCT = TableSpec(models.Product)

MAX_CANDIDATES = 10


# -- duplicates ------------------------------------------------------------------------------


def _candidate(kind: str, rec: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    return {"type": kind, "id": rec["id"], "name": rec.get("name") or rec.get("title"),
            "email": rec.get("email"), "phone": rec.get("phone"), "domain": rec.get("domain"),
            "matched_on": reasons}


async def _matches(uow: UnitOfWork, spec: TableSpec, keys: dict[str, str], exclude: str | None = None
                   ) -> list[tuple[dict[str, Any], list[str]]]:
    """Live records of `spec` whose normalised columns equal any of `keys` (empty keys skipped),
    each with the columns it matched on; one indexed lookup per key."""
    found: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for col, value in keys.items():
        if not value:
            continue
        for rec in await uow.find(spec, {col: value}, order_by="created_at", limit=MAX_CANDIDATES):
            if rec["id"] == exclude:
                continue
            entry = found.setdefault(rec["id"], (rec, []))
            entry[1].append(col.removesuffix("_norm"))
    return list(found.values())[:MAX_CANDIDATES]


def _duplicate_problem(entity: str, candidates: list[dict[str, Any]]) -> Problem:
    return Problem(409, f"This {entity} looks like {len(candidates)} existing record(s); merge it into one of "
                        "them, or send allow_duplicate: true to create it anyway.",
                   type="duplicate", extra={"candidates": candidates})


def _contact_keys(values: dict[str, Any]) -> None:
    first, last = values.get("first_name") or "", values.get("last_name") or ""
    values["name"] = " ".join(p for p in (first, last) if p) or (values.get("email") or "")
    values["email_norm"] = norm_email(values.get("email"))
    values["phone_norm"] = norm_phone(values.get("phone"))
    # A one-word name ("Anna") says too little to call two people the same.
    n = norm_name(values["name"]) if first and last else ""
    values["name_norm"] = n


# -- contacts and companies ------------------------------------------------------------------


class ContactService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        force = bool(values.pop("allow_duplicate", False))
        _contact_keys(values)
        values["emails"] = [e for e in dict.fromkeys(norm_email(e) for e in values.get("emails") or [])
                            if e and e != values["email_norm"]]
        if not force:
            found = await _matches(uow, CONTACT, {k: values[k] for k in ("email_norm", "phone_norm", "name_norm")})
            if found:
                raise _duplicate_problem("contact", [_candidate("contact", r, why) for r, why in found])

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if {"first_name", "last_name", "email", "phone"} & set(changes):
            merged = {**before, **changes}
            _contact_keys(merged)
            for k in ("name", "email_norm", "phone_norm", "name_norm"):
                changes[k] = merged[k]

    async def merge(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        return await _merge(uow, self, record, body.duplicate_id, "contact", CONTACT, {
            ACTIVITY: "contact_id", DEAL: "contact_id", LEAD: "contact_id"},
            fill=("email", "phone", "job_title", "company_id", "owner_id", "address", "first_name", "last_name"),
            lists=("emails", "phones", "tags"))


def _company_keys(values: dict[str, Any]) -> None:
    values["name_norm"] = company_key(values.get("name"))
    values["domain_norm"] = norm_domain(values.get("domain"))
    values["phone_norm"] = norm_phone(values.get("phone"))


class CompanyService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        force = bool(values.pop("allow_duplicate", False))
        _company_keys(values)
        if not force:
            found = await _matches(uow, COMPANY, {k: values[k] for k in ("name_norm", "domain_norm", "phone_norm")})
            if found:
                raise _duplicate_problem("company", [_candidate("company", r, why) for r, why in found])

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        changes.pop("allow_duplicate", None)
        if changes.get("parent_id"):
            await self._no_cycle(uow, before["id"], changes["parent_id"])
        if {"name", "domain", "phone"} & set(changes):
            merged = {**before, **changes}
            _company_keys(merged)
            for k in ("name_norm", "domain_norm", "phone_norm"):
                changes[k] = merged[k]

    async def _no_cycle(self, uow: UnitOfWork, company_id: str, parent_id: str) -> None:
        """A company cannot sit below itself, however deep the hierarchy."""
        seen = {company_id}
        current: str | None = parent_id
        for _ in range(100):
            if current is None:
                return
            if current in seen:
                raise validation([{"pointer": "/parent_id", "detail": "would put the company below itself"}])
            seen.add(current)
            row = await uow.get(COMPANY, current)
            current = row["parent_id"] if row else None
        raise validation([{"pointer": "/parent_id", "detail": "the hierarchy is deeper than 100 levels"}])

    async def merge(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        return await _merge(uow, self, record, body.duplicate_id, "company", COMPANY, {
            ACTIVITY: "company_id", DEAL: "company_id", CONTACT: "company_id", LEAD: "company_id",
            COMPANY: "parent_id"},
            fill=("domain", "industry", "phone", "website", "address", "owner_id", "parent_id"), lists=("tags",))


async def _reassign(uow: UnitOfWork, spec: TableSpec, column: str, old: str, new: str) -> list[str]:
    """Point every live row of `spec` that refers to `old` at `new` (one statement), bumping
    versions so open editors see the change; returns the ids moved. `new` itself is never
    pointed at itself (a company below the duplicate it absorbs)."""
    where = f"org_id = ? AND {column} = ? AND id <> ?" + (" AND deleted_at IS NULL" if spec.soft_delete else "")
    wargs = [uow.ctx.org_id, old, new]
    ids = [r[0] for r in await uow.conn.fetch(f"SELECT id FROM {spec.name} WHERE {where}", wargs)]
    if not ids:
        return []
    sets = f"{column} = ?"
    params: list[Any] = [new]
    if spec.has("version"):
        sets += ", version = version + 1, updated_at = ?, updated_by = ?"
        params += [uow.db.ts(uow.now), uow.ctx.user_id]
    await uow.conn.execute(f"UPDATE {spec.name} SET {sets} WHERE {where}", [*params, *wargs])
    return ids


async def _merge(uow: UnitOfWork, service: RecordService, record: dict[str, Any], duplicate_id: str, entity: str,
                 spec: TableSpec, related: dict[TableSpec, str], *, fill: tuple[str, ...] = (),
                 lists: tuple[str, ...] = ()) -> dict[str, Any]:
    """Merge `duplicate_id` into `record`: every related record and timeline entry moves over,
    empty fields are filled from the duplicate, lists are united; the duplicate is deleted and
    one audit entry keeps both records and what moved."""
    if duplicate_id == record["id"]:
        raise validation([{"pointer": "/duplicate_id", "detail": f"a {entity} cannot be merged into itself"}])
    dup = await uow.get(spec, duplicate_id, for_update=True)
    if dup is None:
        raise validation([{"pointer": "/duplicate_id", "detail": f"no such {entity} in this org"}])
    moved: dict[str, list[str]] = {}
    for rel_spec, column in related.items():
        ids = await _reassign(uow, rel_spec, column, duplicate_id, record["id"])
        if ids:
            moved[f"{rel_spec.name}.{column}"] = ids
    moved_timeline = await uow.conn.execute(
        "UPDATE crm_timeline SET subject_id = ? WHERE org_id = ? AND subject_id = ? AND event_id NOT IN"
        " (SELECT event_id FROM crm_timeline WHERE org_id = ? AND subject_id = ?)",
        [record["id"], uow.ctx.org_id, duplicate_id, uow.ctx.org_id, record["id"]])
    changes: dict[str, Any] = {}
    if record.get("parent_id") == duplicate_id:  # the survivor sat below the duplicate
        changes["parent_id"] = dup.get("parent_id")
    for f in fill:
        if not record.get(f) and dup.get(f) and not (f == "parent_id" and dup[f] == record["id"]):
            changes[f] = dup[f]
    for f in lists:
        united = list(dict.fromkeys([*(record.get(f) or []), *(dup.get(f) or [])]))
        if f == "emails" and (record.get("email") or changes.get("email")):
            keep = norm_email(changes.get("email") or record.get("email"))
            extra = [norm_email(dup.get("email"))] if dup.get("email") else []
            united = [e for e in dict.fromkeys([*united, *extra]) if e and e != keep]
        if f == "phones" and dup.get("phone") and dup.get("phone") != (changes.get("phone") or record.get("phone")):
            united = list(dict.fromkeys([*united, dup["phone"]]))
        if united != (record.get(f) or []):
            changes[f] = united
    if "custom" in record:
        custom = {**(dup.get("custom") or {}), **(record.get("custom") or {})}
        if custom != record.get("custom"):
            changes["custom"] = custom
    if changes:
        await service.before_update(uow, record, changes)
    _, gone = await uow.update(spec, duplicate_id, {"deleted_at": uow.now})
    service.record_change(uow, "deleted", dup, gone)
    before, after = await uow.update(spec, record["id"], changes, expected_version=record["version"])
    uow.audit("crm", service.resource.name, record["id"], "merged",
              {"survivor": record, "duplicate": dup},
              {"survivor": after, "moved": moved, "timeline_entries_moved": moved_timeline})
    uow.emit(service.resource.event_type("merged"), record["id"],
             {"id": record["id"], "record": after, "previous": before, "duplicate_id": duplicate_id, "moved": moved})
    return after


# -- leads -------------------------------------------------------------------------------------


def _lead_keys(values: dict[str, Any]) -> None:
    values["email_norm"] = norm_email(values.get("email"))
    values["phone_norm"] = norm_phone(values.get("phone"))
    values["name_norm"] = norm_name(values.get("name"))


class LeadService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        force = bool(values.pop("allow_duplicate", False))
        _lead_keys(values)
        if not force:
            keys = {"email_norm": values["email_norm"], "phone_norm": values["phone_norm"]}
            found = [_candidate("lead", r, why) for r, why in await _matches(
                uow, LEAD, {**keys, "name_norm": values["name_norm"] if " " in values["name_norm"] else ""})
                if r["status"] != "converted"]
            found += [_candidate("contact", r, why) for r, why in await _matches(uow, CONTACT, keys)]
            if found:
                raise _duplicate_problem("lead", found[:MAX_CANDIDATES])
        if values.get("owner_id") is None:
            values["owner_id"] = await assign_lead(uow, values)

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        changes.pop("allow_duplicate", None)
        if {"name", "email", "phone"} & set(changes):
            merged = {**before, **changes}
            _lead_keys(merged)
            for k in ("email_norm", "phone_norm", "name_norm"):
                changes[k] = merged[k]

    async def qualify(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] == "qualified":
            return record
        if record["status"] == "converted":
            raise Problem(409, "The lead is converted already.")
        return await self.change(uow, record, {"status": "qualified", "disqualify_reason": ""}, "qualified")

    async def disqualify(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] == "converted":
            raise Problem(409, "A converted lead cannot be disqualified.")
        return await self.change(uow, record, {"status": "disqualified", "disqualify_reason": body.reason},
                                 "disqualified")

    async def convert(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        """Lead → contact + company + deal, in the caller's one transaction: an existing contact
        (same email or phone) and company (same domain or name) are reused, not duplicated."""
        from .resources import companies, contacts, deals

        if record["status"] == "converted":
            raise Problem(409, "The lead is converted already.", extra={"deal_id": record["deal_id"]})
        if record["status"] == "disqualified":
            raise Problem(409, "Qualify the lead again before converting it.")
        reused: dict[str, bool] = {}
        # The company: given, else matched by e-mail domain or normalised name, else created.
        company = None
        if body.company_id:
            company = await uow.get(COMPANY, body.company_id)
            if company is None:
                raise validation([{"pointer": "/company_id", "detail": "no such company in this org"}])
            reused["company"] = True
        else:
            domain = norm_domain(record.get("website")) or domain_of_email(record.get("email"))
            keys = {"domain_norm": domain, "name_norm": company_key(record.get("company_name"))}
            found = await _matches(uow, COMPANY, keys)
            if found:
                company, reused["company"] = found[0][0], True
            elif record.get("company_name"):
                company = await companies.service_instance.create(uow, {
                    "name": record["company_name"], "domain": domain or None, "owner_id": record["owner_id"],
                    "tags": [], "custom": {}, "allow_duplicate": True, "website": record.get("website") or ""})
                reused["company"] = False
        # The contact: given, else matched by e-mail or phone, else created.
        if body.contact_id:
            contact = await uow.get(CONTACT, body.contact_id)
            if contact is None:
                raise validation([{"pointer": "/contact_id", "detail": "no such contact in this org"}])
            reused["contact"] = True
        else:
            found = await _matches(uow, CONTACT, {"email_norm": record["email_norm"], "phone_norm": record["phone_norm"]})
            if found:
                contact, reused["contact"] = found[0][0], True
            else:
                first, _, last = record["name"].partition(" ")
                contact = await contacts.service_instance.create(uow, {
                    "first_name": first, "last_name": last, "email": record.get("email"), "emails": [],
                    "phone": record.get("phone"), "phones": [], "job_title": "", "address": "",
                    "company_id": company["id"] if company else None, "owner_id": record["owner_id"],
                    "tags": list(record.get("tags") or []), "custom": {}, "allow_duplicate": True})
                reused["contact"] = False
        if company and not contact.get("company_id"):
            contact = await contacts.service_instance.update(uow, contact["id"], {"company_id": company["id"]})
        deal = None
        if body.create_deal:
            deal = await deals.service_instance.create(uow, {
                "title": body.deal_title or f"{(company or {}).get('name') or record['name']}",
                "amount": record.get("amount") or Decimal("0"), "currency": record.get("currency") or
                await org_currency(uow), "expected_close_date": None, "probability": None,
                "owner_id": record["owner_id"], "pipeline_id": body.pipeline_id, "stage_id": body.stage_id,
                "committed": False, "company_id": company["id"] if company else None, "contact_id": contact["id"],
                "description": record.get("message") or "", "tags": list(record.get("tags") or []), "custom": {},
                "lead_id": record["id"]})
        after = await self.change(uow, record, {
            "status": "converted", "converted_at": uow.now, "contact_id": contact["id"],
            "company_id": company["id"] if company else None, "deal_id": deal["id"] if deal else None}, "converted")
        return {**after, "conversion": {"contact": contact, "company": company, "deal": deal, "reused": reused}}


async def assign_lead(uow: UnitOfWork, lead: dict[str, Any]) -> str | None:
    """The owner of a new lead: the first active rule (by position) that matches it picks the
    next of its users in turn. The rule row is locked while its turn advances, so concurrent
    leads take different turns."""
    rules = await uow.find(RULE, {"active": True}, order_by="position")
    for rule in rules:
        if rule["field"] is not None:
            got = str(lead.get(rule["field"]) or "").strip().casefold()
            if got != (rule["value"] or "").strip().casefold():
                continue
        users = rule["user_ids"] or []
        if not users:
            continue
        locked = await uow.require(RULE, rule["id"])
        await uow.conn.execute("UPDATE crm_assignment_rule SET cursor = cursor + 1 WHERE org_id = ? AND id = ?",
                               [uow.ctx.org_id, rule["id"]])
        return str(users[locked["cursor"] % len(users)])
    return None


class AssignmentRuleService(RecordService):
    async def _users(self, uow: UnitOfWork, ids: list[str] | None) -> None:
        if not ids:
            return
        spec = self.references_resolver("identity.users") if self.references_resolver else None
        if spec is None:
            return
        uniq = list(dict.fromkeys(ids))
        rows = await uow.conn.fetch(f"SELECT id FROM {spec.name} WHERE org_id = ? AND deleted_at IS NULL AND id IN"
                                    f" ({','.join('?' * len(uniq))})", [uow.ctx.org_id, *uniq])
        found = {r[0] for r in rows}
        bad = [i for i, u in enumerate(ids) if u not in found]
        if bad:
            raise validation([{"pointer": f"/user_ids/{i}", "detail": "no such user in this org"} for i in bad])

    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        await self._users(uow, values.get("user_ids"))

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        await self._users(uow, changes.get("user_ids"))
        merged = {**before, **changes}
        if (merged.get("field") is None) != (merged.get("value") is None):
            raise validation([{"pointer": "/value", "detail": "field and value go together"}])


# -- pipelines and stages -----------------------------------------------------------------------


class PipelineService(RecordService):
    async def after_create(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        await self._only_default(uow, record)

    async def after_update(self, uow: UnitOfWork, before: dict[str, Any], after: dict[str, Any]) -> None:
        await self._only_default(uow, after)

    async def _only_default(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        if record.get("is_default"):
            for other in await uow.find(PIPELINE, {"is_default": True}):
                if other["id"] != record["id"]:
                    b, a = await uow.update(PIPELINE, other["id"], {"is_default": False})
                    self.record_change(uow, "updated", b, a)

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        if await uow.find(DEAL, {"pipeline_id": record["id"]}, limit=1):
            raise Problem(409, "The pipeline still has deals; move or delete them first.")


class StageService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        if not await uow.exists(PIPELINE, values["pipeline_id"]):
            raise validation([{"pointer": "/pipeline_id", "detail": "no such pipeline in this org"}])

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if "pipeline_id" in changes and changes["pipeline_id"] != before["pipeline_id"]:
            raise validation([{"pointer": "/pipeline_id", "detail": "a stage stays in its pipeline"}])
        if "kind" in changes and changes["kind"] != before["kind"] and await uow.find(
                DEAL, {"stage_id": before["id"]}, limit=1):
            raise Problem(409, "Deals are in this stage; move them before changing its kind.")

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        if await uow.find(DEAL, {"stage_id": record["id"]}, limit=1):
            raise Problem(409, "Deals are in this stage; move them first.")


async def pipeline_stages(uow: UnitOfWork, pipeline_id: str) -> list[dict[str, Any]]:
    return await uow.find(STAGE, {"pipeline_id": pipeline_id}, order_by="position")


async def org_currency(uow: UnitOfWork) -> str:
    rows = await uow.find(SETTINGS, limit=1)
    return str(rows[0]["currency"]) if rows else "USD"


# -- deals ----------------------------------------------------------------------------------------


class DealService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        pipeline_id, stage_id = values.get("pipeline_id"), values.get("stage_id")
        if stage_id:
            stage = await uow.get(STAGE, stage_id)
            if stage is None or (pipeline_id and stage["pipeline_id"] != pipeline_id):
                raise validation([{"pointer": "/stage_id", "detail": "no such stage in this pipeline"}])
            pipeline_id = stage["pipeline_id"]
        else:
            if not pipeline_id:
                found = await uow.find(PIPELINE, {"is_default": True}, limit=1) or await uow.find(
                    PIPELINE, order_by="created_at", limit=1)
                if not found:
                    raise validation([{"pointer": "/pipeline_id", "detail": "create a pipeline with stages first"}])
                pipeline_id = found[0]["id"]
            elif not await uow.exists(PIPELINE, pipeline_id):
                raise validation([{"pointer": "/pipeline_id", "detail": "no such pipeline in this org"}])
            open_stages = [s for s in await pipeline_stages(uow, pipeline_id) if s["kind"] == "open"]
            if not open_stages:
                raise validation([{"pointer": "/pipeline_id", "detail": "the pipeline has no open stage"}])
            stage = open_stages[0]
        values["pipeline_id"], values["stage_id"] = pipeline_id, stage["id"]
        if values.get("probability") is None:
            values["probability"] = stage["probability"]
        values["status"] = stage["kind"]
        values["stage_entered_at"] = uow.now
        values["closed_at"] = uow.now if stage["kind"] != "open" else None

    async def after_create(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        await self._enter(uow, record["id"], record["pipeline_id"], record["stage_id"])

    async def _enter(self, uow: UnitOfWork, deal_id: str, pipeline_id: str, stage_id: str) -> None:
        now = uow.db.ts(uow.now)
        await uow.conn.execute("UPDATE crm_stage_history SET left_at = ? WHERE org_id = ? AND deal_id = ?"
                               " AND left_at IS NULL", [now, uow.ctx.org_id, deal_id])
        await uow.conn.execute(
            "INSERT INTO crm_stage_history (id, org_id, deal_id, pipeline_id, stage_id, entered_at, left_at,"
            " entered_by) VALUES (?,?,?,?,?,?,?,?)",
            [new_id(), uow.ctx.org_id, deal_id, pipeline_id, stage_id, now, None, uow.ctx.user_id])

    async def _to_stage(self, uow: UnitOfWork, record: dict[str, Any], stage: dict[str, Any], verb: str,
                        extra: dict[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {"stage_id": stage["id"], "pipeline_id": stage["pipeline_id"],
                                   "status": stage["kind"], "stage_entered_at": uow.now, **extra}
        if stage["kind"] == "open":
            changes.setdefault("closed_at", None)
        elif record["status"] == "open" or record["stage_id"] != stage["id"]:
            changes.setdefault("closed_at", uow.now)
        after = await self.change(uow, record, changes, verb)
        await self._enter(uow, record["id"], stage["pipeline_id"], stage["id"])
        return after

    async def _stage(self, uow: UnitOfWork, stage_id: str, pointer: str = "/stage_id") -> dict[str, Any]:
        stage = await uow.get(STAGE, stage_id)
        if stage is None:
            raise validation([{"pointer": pointer, "detail": "no such stage in this org"}])
        return stage

    async def move(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        """Drag to another column (or pipeline): the stage history records the move."""
        stage = await self._stage(uow, body.stage_id)
        if stage["id"] == record["stage_id"]:
            return record
        if stage["kind"] == "lost":
            raise Problem(409, "Use the lose action, with a reason, to move a deal to a lost stage.")
        if stage["kind"] == "won":
            return await self._to_stage(uow, record, stage, "won", {"probability": 100, "lost_reason": ""})
        prob = body.probability if body.probability is not None else stage["probability"]
        if record["status"] != "open":
            # Dragging a closed card back onto an open column reopens it there.
            return await self._to_stage(uow, record, stage, "reopened", {
                "probability": prob, "closed_at": None, "won_reason": "", "lost_reason": ""})
        return await self._to_stage(uow, record, stage, "moved", {"probability": prob})

    async def _closing_stage(self, uow: UnitOfWork, record: dict[str, Any], kind: str, stage_id: str | None
                             ) -> dict[str, Any]:
        if stage_id:
            stage = await self._stage(uow, stage_id)
            if stage["kind"] != kind or stage["pipeline_id"] != record["pipeline_id"]:
                raise validation([{"pointer": "/stage_id", "detail": f"not a {kind} stage of the deal's pipeline"}])
            return stage
        stages = [s for s in await pipeline_stages(uow, record["pipeline_id"]) if s["kind"] == kind]
        if not stages:
            raise Problem(409, f"The pipeline has no {kind} stage; add one first.")
        return stages[0]

    async def win(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] == "won":
            return record
        stage = await self._closing_stage(uow, record, "won", body.stage_id)
        return await self._to_stage(uow, record, stage, "won",
                                    {"probability": 100, "won_reason": body.reason, "lost_reason": ""})

    async def lose(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] == "lost":
            raise Problem(409, "The deal is lost already; reopen it first.")
        stage = await self._closing_stage(uow, record, "lost", body.stage_id)
        return await self._to_stage(uow, record, stage, "lost",
                                    {"probability": 0, "lost_reason": body.reason, "won_reason": ""})

    async def reopen(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        if record["status"] == "open":
            raise Problem(409, "Only a won or lost deal can be reopened.")
        if body.stage_id:
            stage = await self._stage(uow, body.stage_id)
            if stage["kind"] != "open" or stage["pipeline_id"] != record["pipeline_id"]:
                raise validation([{"pointer": "/stage_id", "detail": "not an open stage of the deal's pipeline"}])
        else:
            # The open stage it was in last, else the pipeline's first.
            rows = await uow.conn.fetch(
                "SELECT h.stage_id FROM crm_stage_history h JOIN crm_stage s ON s.id = h.stage_id AND s.org_id = h.org_id"
                " WHERE h.org_id = ? AND h.deal_id = ? AND s.kind = 'open' AND s.deleted_at IS NULL"
                " AND s.pipeline_id = ? ORDER BY h.entered_at DESC, h.id DESC LIMIT 1",
                [uow.ctx.org_id, record["id"], record["pipeline_id"]])
            if rows:
                stage = await self._stage(uow, rows[0][0])
            else:
                opens = [s for s in await pipeline_stages(uow, record["pipeline_id"]) if s["kind"] == "open"]
                if not opens:
                    raise Problem(409, "The pipeline has no open stage.")
                stage = opens[0]
        return await self._to_stage(uow, record, stage, "reopened", {
            "probability": stage["probability"], "closed_at": None, "won_reason": "", "lost_reason": ""})

    async def merge(self, uow: UnitOfWork, record: dict[str, Any], body: Any) -> dict[str, Any]:
        return await _merge(uow, self, record, body.duplicate_id, "deal", DEAL, {
            ACTIVITY: "deal_id", LINE: "deal_id", HISTORY: "deal_id"},
            fill=("expected_close_date", "company_id", "contact_id", "owner_id", "description"), lists=("tags",))

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        await uow.conn.execute("UPDATE crm_stage_history SET left_at = ? WHERE org_id = ? AND deal_id = ?"
                               " AND left_at IS NULL", [uow.db.ts(uow.now), uow.ctx.org_id, record["id"]])


# -- products, line items, activities -------------------------------------------------------------


def _line_total(quantity: Decimal, price: Decimal, discount: Decimal) -> Decimal:
    return (quantity * price * (Decimal(100) - discount) / Decimal(100)).quantize(Decimal("0.01"))


class LineItemService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        if not await uow.exists(DEAL, values["deal_id"]):
            raise validation([{"pointer": "/deal_id", "detail": "no such deal in this org"}])
        product = None
        if values.get("product_id"):
            product = await uow.get(PRODUCT, values["product_id"])
            if product is None:
                raise validation([{"pointer": "/product_id", "detail": "no such product in this org"}])
        if not values.get("name"):
            if product is None:
                raise validation([{"pointer": "/name", "detail": "a line without a product needs a name"}])
            values["name"] = product["name"]
        if values.get("unit_price") is None:
            values["unit_price"] = Decimal(str(product["price"])) if product else Decimal("0")
        values["total"] = _line_total(Decimal(str(values["quantity"])), Decimal(str(values["unit_price"])),
                                      Decimal(str(values["discount_percent"])))

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        merged = {**before, **{k: v for k, v in changes.items() if v is not None}}
        changes["total"] = _line_total(Decimal(str(merged["quantity"])), Decimal(str(merged["unit_price"])),
                                       Decimal(str(merged["discount_percent"])))


class ActivityService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        links = [values.get(k) for k in ("deal_id", "contact_id", "company_id", "lead_id")]
        if not any(links):
            raise validation([{"pointer": "/deal_id",
                               "detail": "an activity is about a deal, contact, company or lead"}])
        if values.get("occurred_at") is None:
            values["occurred_at"] = uow.now
        if values.get("owner_id") is None and uow.ctx.principal.kind == "user":
            values["owner_id"] = uow.ctx.user_id
        # A deal's activity also shows on its company and contact.
        if values.get("deal_id"):
            deal = await uow.get(DEAL, values["deal_id"])
            if deal is not None:
                values["company_id"] = values.get("company_id") or deal["company_id"]
                values["contact_id"] = values.get("contact_id") or deal["contact_id"]
        if values["kind"] == "task":
            # The task lives in the Tasks app, created in this same transaction.
            task = await create_task_in(uow, TaskCreate(
                title=values["subject"][:500], description=values.get("body") or "",
                assignee_id=values.get("owner_id"), due_at=values.get("due_at"),
                status="done" if values.get("done") else "todo"))
            values["task_id"] = task["id"]


# -- timeline ---------------------------------------------------------------------------------------


def _ts(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


async def add_timeline(uow: UnitOfWork, subject_type: str, subject_id: str | None, event: dict[str, Any], kind: str,
                       title: str, body: str = "", ref_type: str | None = None, ref_id: str | None = None,
                       at: Any = None, data: dict[str, Any] | None = None) -> None:
    """One timeline line for a subject, once per event (a redelivered event adds nothing)."""
    if not subject_id:
        return
    db = uow.db
    record = (event.get("data") or {}).get("record") or {}
    actor = record.get("updated_by") if isinstance(record, dict) else None
    when = _ts(at or event.get("time") or utcnow())
    await uow.conn.execute(
        "INSERT INTO crm_timeline (id, org_id, subject_type, subject_id, at, kind, title, body, ref_type, ref_id,"
        " actor_id, event_id, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
        [new_id(), uow.ctx.org_id, subject_type, subject_id, db.ts(when), kind[:32], title[:300], body[:20_000],
         ref_type, ref_id, actor, event["id"], db.json(data) if data else None])


class WebFormService(RecordService):
    """A form's token is made here, never chosen by a client; it is public (it sits in the
    website's HTML) and only ever creates leads, within the form's origins and rate."""

    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        import secrets

        values["token"] = secrets.token_urlsafe(24)
