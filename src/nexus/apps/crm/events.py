"""CRM events: what it publishes (beyond the kernel's created/updated/deleted/restored of every
resource, the actions' nexus.crm.deal.moved|won|lost|reopened|merged, nexus.crm.lead.qualified|
disqualified|converted, nexus.crm.contact.merged, nexus.crm.company.merged) and what it
consumes: its own record events and the Tasks app's task events, written into the record
timelines of contacts, companies and deals. Nothing here polls another app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nexus.kernel.records import UnitOfWork

from .service import ACTIVITY, STAGE, add_timeline

if TYPE_CHECKING:
    from nexus.kernel.http.app import Nexus

__all__ = ["PUBLISHED", "on_crm_event", "on_task_event", "subscribe"]

PUBLISHED = (
    "nexus.crm.deal.moved", "nexus.crm.deal.won", "nexus.crm.deal.lost", "nexus.crm.deal.reopened",
    "nexus.crm.deal.merged", "nexus.crm.lead.qualified", "nexus.crm.lead.disqualified", "nexus.crm.lead.converted",
    "nexus.crm.contact.merged", "nexus.crm.company.merged",
)

_DEAL_FIELDS = ("title", "amount", "currency", "expected_close_date", "probability", "owner_id", "committed",
                "company_id", "contact_id")
_PERSON_FIELDS = ("name", "email", "phone", "job_title", "company_id", "owner_id", "domain", "industry",
                  "parent_id", "tags", "custom")


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None, fields: tuple[str, ...]
             ) -> dict[str, list[Any]]:
    if not before or not after:
        return {}
    return {f: [before.get(f), after.get(f)] for f in fields if f in after and before.get(f) != after.get(f)}


async def on_crm_event(uow: UnitOfWork, event: dict[str, Any]) -> None:
    _, _, entity, verb = event["type"].split(".", 3)
    data = event.get("data") or {}
    rec = data.get("record") or {}
    prev = data.get("previous") or {}
    rid = data.get("id") or event.get("subject")
    if entity == "activity":
        if verb != "created":
            return
        title, body = rec.get("subject", ""), (rec.get("body") or "")[:2000]
        for subject_type, key in (("deal", "deal_id"), ("contact", "contact_id"), ("company", "company_id")):
            await add_timeline(uow, subject_type, rec.get(key), event, f"activity.{rec.get('kind')}", title, body,
                               "crm.activities", rid, at=rec.get("occurred_at"),
                               data={"kind": rec.get("kind"), "task_id": rec.get("task_id")})
        return
    if entity == "deal":
        title = rec.get("title") or prev.get("title") or "deal"
        related = (("company", rec.get("company_id")), ("contact", rec.get("contact_id")))
        if verb == "created":
            await add_timeline(uow, "deal", rid, event, "created", f"Deal created: {title}", ref_type="crm.deals",
                               ref_id=rid, data={"amount": rec.get("amount"), "currency": rec.get("currency")})
            for st, sid in related:
                await add_timeline(uow, st, sid, event, "deal", f"New deal: {title}", ref_type="crm.deals", ref_id=rid)
        elif verb == "updated":
            changed = _changes(prev, rec, _DEAL_FIELDS)
            if changed:
                await add_timeline(uow, "deal", rid, event, "change", "Changed " + ", ".join(
                    f.replace("_", " ") for f in changed), ref_type="crm.deals", ref_id=rid, data=changed)
        elif verb in ("moved", "won", "lost", "reopened"):
            stage = await uow.get(STAGE, rec.get("stage_id") or "", include_deleted=True)
            name = stage["name"] if stage else "?"
            label = {"moved": f"Moved to {name}", "won": f"Won ({name})", "lost": f"Lost ({name})",
                     "reopened": f"Reopened in {name}"}[verb]
            reason = rec.get("lost_reason") if verb == "lost" else rec.get("won_reason") if verb == "won" else ""
            data_out = {"from_stage_id": prev.get("stage_id"), "to_stage_id": rec.get("stage_id"),
                        "probability": rec.get("probability")}
            await add_timeline(uow, "deal", rid, event, "stage" if verb == "moved" else verb, label, reason or "",
                               "crm.deals", rid, data=data_out)
            if verb in ("won", "lost"):
                for st, sid in related:
                    await add_timeline(uow, st, sid, event, verb, f"{verb.capitalize()}: {title}", reason or "",
                                       "crm.deals", rid)
        elif verb == "merged":
            await add_timeline(uow, "deal", rid, event, "merge", "Merged a duplicate deal into this one",
                               ref_type="crm.deals", ref_id=data.get("duplicate_id"), data={"moved": data.get("moved")})
        elif verb in ("deleted", "restored"):
            await add_timeline(uow, "deal", rid, event, verb, f"Deal {verb}", ref_type="crm.deals", ref_id=rid)
        return
    if entity in ("contact", "company"):
        label = rec.get("name") or prev.get("name") or entity
        if verb == "created":
            await add_timeline(uow, entity, rid, event, "created", f"{entity.capitalize()} created: {label}",
                               ref_type=f"crm.{'companies' if entity == 'company' else 'contacts'}", ref_id=rid)
        elif verb == "updated":
            changed = _changes(prev, rec, _PERSON_FIELDS)
            if changed:
                await add_timeline(uow, entity, rid, event, "change", "Changed " + ", ".join(
                    f.replace("_", " ") for f in changed), data=changed)
        elif verb == "merged":
            await add_timeline(uow, entity, rid, event, "merge", f"Merged a duplicate {entity} into this one",
                               ref_id=data.get("duplicate_id"), data={"moved": data.get("moved")})
        return
    if entity == "lead" and verb == "converted":
        name = rec.get("name", "")
        for st, key in (("contact", "contact_id"), ("company", "company_id"), ("deal", "deal_id")):
            await add_timeline(uow, st, rec.get(key), event, "converted", f"Converted from lead {name}",
                               rec.get("message") or "", "crm.leads", rid)


async def on_task_event(uow: UnitOfWork, event: dict[str, Any]) -> None:
    """A task linked to a CRM activity: its progress shows on the activity's records, and a
    done task marks its activity done."""
    verb = event["type"].rsplit(".", 1)[1]
    if verb in ("created", "updated"):
        return  # the activity's own entry says it was created; edits are the Tasks app's business
    data = event.get("data") or {}
    task = data.get("record") or data.get("previous") or {}
    task_id = data.get("id") or event.get("subject")
    if not task_id:
        return
    for act in await uow.find(ACTIVITY, {"task_id": task_id}):
        for subject_type, key in (("deal", "deal_id"), ("contact", "contact_id"), ("company", "company_id")):
            await add_timeline(uow, subject_type, act.get(key), event, "task", f"Task {verb}: {task.get('title', '')}",
                               ref_type="tasks.tasks", ref_id=task_id, data={"activity_id": act["id"]})
        done = verb == "completed" or (task.get("status") == "done")
        if verb in ("completed", "reopened") and act["done"] != done:
            from .resources import activities

            before, after = await uow.update(ACTIVITY, act["id"], {"done": done})
            activities.service_instance.record_change(uow, "updated", before, after)


def subscribe(nx: Nexus) -> None:
    nx.events.subscribe("crm.timeline", "nexus.crm.*", on_crm_event)
    nx.events.subscribe("crm.timeline.tasks", "nexus.tasks.task.*", on_task_event)
