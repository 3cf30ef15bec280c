"""The sales process: deals through stages (history, won/lost/reopened), leads qualified and
converted, duplicates refused and merged, assignment rules, task activities."""

from __future__ import annotations

import asyncio

import httpx

from nexus.kernel.http.app import Nexus
from tests.apps.crm.helpers import CRM, act, make_company, make_contact, make_deal, make_pipeline
from tests.factories import audit_rows, new_org


async def _history(actor, deal_id):  # type: ignore[no-untyped-def]
    r = await actor.get(f"{CRM}/deals/{deal_id}/stage-history")
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_deal_moves_through_stages_with_history(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    p = await make_pipeline(owner)
    lead_in, qualified, proposal, _, won, lost = p["stages"]
    deal = await make_deal(owner)
    assert deal["stage_id"] == lead_in["id"] and deal["probability"] == 10 and deal["status"] == "open"
    r = await act(owner, f"deals/{deal['id']}", "move", {"stage_id": qualified["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["probability"] == 30 and r.json()["version"] == 2
    r = await act(owner, f"deals/{deal['id']}", "move", {"stage_id": proposal["id"], "probability": 55})
    assert r.json()["probability"] == 55
    hist = await _history(owner, deal["id"])
    assert [h["stage"] for h in hist] == ["Lead in", "Qualified", "Proposal"]
    assert all(h["left_at"] for h in hist[:2]) and hist[2]["left_at"] is None
    assert all(h["seconds_in_stage"] >= 0 for h in hist)
    # Stage changes go through the actions, never a PATCH.
    r = await owner.patch(f"{CRM}/deals/{deal['id']}", json={"stage_id": won["id"]})
    assert r.status_code == 422
    # Moving into a lost stage needs the lose action's reason.
    r = await act(owner, f"deals/{deal['id']}", "move", {"stage_id": lost["id"]})
    assert r.status_code == 409
    # A stage of another org is no stage at all.
    other = await new_org(client, nx)
    foreign = await make_pipeline(other)
    r = await act(owner, f"deals/{deal['id']}", "move", {"stage_id": foreign["stages"][1]["id"]})
    assert r.status_code == 422
    assert len(await _history(owner, deal["id"])) == 3


async def test_win_lose_reopen(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    p = await make_pipeline(owner)
    deal = await make_deal(owner)
    r = await act(owner, f"deals/{deal['id']}", "lose", {})
    assert r.status_code == 422  # a reason is required
    r = await act(owner, f"deals/{deal['id']}", "lose", {"reason": "Went with a competitor"})
    assert r.status_code == 200, r.text
    lost = r.json()
    assert lost["status"] == "lost" and lost["probability"] == 0 and lost["closed_at"]
    assert lost["lost_reason"] == "Went with a competitor" and lost["stage_id"] == p["stages"][5]["id"]
    assert (await act(owner, f"deals/{deal['id']}", "lose", {"reason": "again"})).status_code == 409
    r = await act(owner, f"deals/{deal['id']}", "reopen", {})
    assert r.status_code == 200, r.text
    reopened = r.json()
    assert reopened["status"] == "open" and reopened["closed_at"] is None
    assert reopened["stage_id"] == p["stages"][0]["id"]  # back where it was before it was lost
    assert (await act(owner, f"deals/{deal['id']}", "reopen", {})).status_code == 409
    r = await act(owner, f"deals/{deal['id']}", "win", {"reason": "Best price"})
    won = r.json()
    assert won["status"] == "won" and won["probability"] == 100 and won["won_reason"] == "Best price"
    async with nx.db.reader() as conn:
        types = [row[0] for row in await conn.fetch(
            "SELECT type FROM kernel_outbox WHERE org_id = ? AND subject = ? ORDER BY id", [owner.org_id, deal["id"]])]
    assert ["nexus.crm.deal.lost", "nexus.crm.deal.reopened", "nexus.crm.deal.won"] == [
        t for t in types if t.rsplit(".", 1)[1] in ("lost", "reopened", "won")]
    r = await owner.get("/api/v1/events/types")
    listed = {t["type"]: t for t in r.json()["items"]}
    for t in ("nexus.crm.deal.won", "nexus.crm.deal.lost", "nexus.crm.deal.reopened", "nexus.crm.deal.moved",
              "nexus.crm.deal.merged", "nexus.crm.lead.converted", "nexus.crm.contact.merged"):
        assert listed[t]["schema"]["type"] == "object", t
    assert [h["kind"] for h in await _history(owner, deal["id"])] == ["open", "lost", "open", "won"]
    # Dragging the won card back onto an open column reopens it there.
    r = await act(owner, f"deals/{deal['id']}", "move", {"stage_id": p["stages"][1]["id"]})
    assert r.json()["status"] == "open" and r.json()["won_reason"] == "" and r.json()["closed_at"] is None


async def test_global_search_finds_crm_records(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await make_pipeline(owner)
    c = await make_contact(owner, first_name="Zebulon", last_name="Quuxley")
    co = await make_company(owner, name="Quuxley Industries")
    d = await make_deal(owner, title="Quuxley renewal")
    for _ in range(400):
        if await nx.events.settled():
            break
        await asyncio.sleep(0.05)
    r = await owner.get("/api/v1/search", params={"q": "quuxley"})
    assert r.status_code == 200, r.text
    found = {(h["type"], h["id"]) for h in r.json()["items"]}
    assert {("crm.contacts", c["id"]), ("crm.companies", co["id"]), ("crm.deals", d["id"])} <= found
    stranger = await new_org(client, nx)
    assert (await stranger.get("/api/v1/search", params={"q": "quuxley"})).json()["items"] == []


async def test_deal_defaults_and_tenancy_of_references(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await owner.post(f"{CRM}/deals", json={"title": "No pipeline yet"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/pipeline_id"
    await make_pipeline(owner, default=False)
    main = await make_pipeline(owner, default=True)
    deal = await make_deal(owner)
    assert deal["pipeline_id"] == main["id"]
    stranger = await new_org(client, nx)
    company = await make_company(stranger)
    r = await owner.post(f"{CRM}/deals", json={"title": "x", "company_id": company["id"]})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/company_id"
    # A pipeline with deals cannot be deleted, nor a stage holding deals.
    assert (await owner.delete(f"{CRM}/pipelines/{main['id']}")).status_code == 409
    assert (await owner.delete(f"{CRM}/stages/{main['stages'][0]['id']}")).status_code == 409


async def test_duplicates_are_refused_with_candidates_unless_forced(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    first = await make_contact(owner, first_name="José", last_name="O'Neil", email="Jose@Example.com",
                               phone="+49 (30) 1234-567")
    for body, matched in (({"first_name": "J", "email": "jose@example.COM "}, "email"),
                          ({"first_name": "J", "phone": "0049 30 1234567"}, "phone"),
                          ({"first_name": "jose", "last_name": "oneil"}, "name")):
        r = await owner.post(f"{CRM}/contacts", json=body)
        assert r.status_code == 409, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        cands = r.json()["candidates"]
        assert cands[0]["id"] == first["id"] and matched in cands[0]["matched_on"]
    r = await owner.post(f"{CRM}/contacts", json={"first_name": "J", "email": "jose@example.com",
                                                  "allow_duplicate": True})
    assert r.status_code == 201
    c1 = await make_company(owner, name="ACME, Inc.", domain="https://www.acme.example/about")
    assert c1["domain"] == "acme.example"
    for body in ({"name": "Acme"}, {"name": "Other", "domain": "ACME.example"}):
        r = await owner.post(f"{CRM}/companies", json=body)
        assert r.status_code == 409 and r.json()["candidates"][0]["id"] == c1["id"], r.text
    # Another org's records are never candidates.
    other = await new_org(client, nx)
    assert (await other.post(f"{CRM}/contacts", json={"first_name": "J", "email": "jose@example.com"})).status_code == 201
    # Import: the duplicate row is an error with its candidates, the rest import (partial mode).
    r = await owner.post(f"{CRM}/contacts/import", params={"mode": "partial"},
                         json=[{"first_name": "New", "email": "new@example.com"},
                               {"first_name": "Dup", "email": "JOSE@example.com"}])
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1 and r.json()["errors"][0]["row"] == 2


async def test_merge_contacts_moves_everything_and_is_audited(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await make_pipeline(owner)
    keep = await make_contact(owner, email="ann@example.com", tags=["a"])
    dup = await make_contact(owner, first_name="Annie", last_name="Other", email="annie@example.com",
                             phone="+1 555 0100 200", job_title="CFO", tags=["b"], allow_duplicate=True)
    deal = await make_deal(owner, contact_id=dup["id"])
    r = await owner.post(f"{CRM}/activities", json={"kind": "call", "subject": "Call Annie", "contact_id": dup["id"]})
    activity = r.json()
    r = await act(owner, f"contacts/{keep['id']}", "merge", {"duplicate_id": dup["id"]})
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["phone"] == "+1 555 0100 200" and merged["job_title"] == "CFO"
    assert set(merged["tags"]) == {"a", "b"} and "annie@example.com" in merged["emails"]
    assert (await owner.get(f"{CRM}/contacts/{dup['id']}")).status_code == 404
    assert (await owner.get(f"{CRM}/deals/{deal['id']}")).json()["contact_id"] == keep["id"]
    assert (await owner.get(f"{CRM}/activities/{activity['id']}")).json()["contact_id"] == keep["id"]
    rows = await audit_rows(nx, owner.org_id, action="merged", record_id=keep["id"])
    assert len(rows) == 1
    assert rows[0]["before"]["duplicate"]["id"] == dup["id"]
    assert deal["id"] in rows[0]["after"]["moved"]["crm_deal.contact_id"]
    # Merging into itself, or a record of another org, changes nothing.
    assert (await act(owner, f"contacts/{keep['id']}", "merge", {"duplicate_id": keep["id"]})).status_code == 422
    stranger = await new_org(client, nx)
    theirs = await make_contact(stranger)
    assert (await act(owner, f"contacts/{keep['id']}", "merge", {"duplicate_id": theirs["id"]})).status_code == 422
    assert (await stranger.get(f"{CRM}/contacts/{theirs['id']}")).status_code == 200


async def test_merge_deals_moves_line_items_and_history(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    p = await make_pipeline(owner)
    keep, dup = await make_deal(owner), await make_deal(owner)
    await act(owner, f"deals/{dup['id']}", "move", {"stage_id": p["stages"][2]["id"]})
    r = await owner.post(f"{CRM}/line-items", json={"deal_id": dup["id"], "name": "Seats", "quantity": "3",
                                                    "unit_price": "10.00", "discount_percent": "10"})
    line = r.json()
    assert line["total"] == "27.00"
    r = await act(owner, f"deals/{keep['id']}", "merge", {"duplicate_id": dup["id"]})
    assert r.status_code == 200, r.text
    assert (await owner.get(f"{CRM}/line-items/{line['id']}")).json()["deal_id"] == keep["id"]
    assert len(await _history(owner, keep["id"])) == 3
    assert (await owner.get(f"{CRM}/deals/{dup['id']}")).status_code == 404


async def test_company_hierarchy_refuses_cycles_and_merge_keeps_it_sane(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    group = await make_company(owner, name="Group")
    sub = await make_company(owner, name="Subsidiary", parent_id=group["id"])
    leaf = await make_company(owner, name="Leaf", parent_id=sub["id"])
    r = await owner.patch(f"{CRM}/companies/{group['id']}", json={"parent_id": leaf["id"]})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/parent_id"
    children = (await owner.get(f"{CRM}/companies", params={"parent_id": group["id"]})).json()["items"]
    assert [c["id"] for c in children] == [sub["id"]]
    # The subsidiary absorbs its parent: it takes the parent's place, never its own child.
    r = await act(owner, f"companies/{sub['id']}", "merge", {"duplicate_id": group["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["parent_id"] is None
    assert (await owner.get(f"{CRM}/companies/{leaf['id']}")).json()["parent_id"] == sub["id"]


async def test_lead_convert_creates_or_reuses_in_one_transaction(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await make_pipeline(owner)
    r = await owner.post(f"{CRM}/leads", json={"name": "Grace Hopper", "company_name": "Cobol Ltd",
                                              "email": "grace@cobol.example", "amount": "5000.00", "currency": "EUR"})
    lead = r.json()
    assert (await act(owner, f"leads/{lead['id']}", "qualify")).json()["status"] == "qualified"
    r = await act(owner, f"leads/{lead['id']}", "convert", {"deal_title": "Cobol modernisation"})
    assert r.status_code == 200, r.text
    out = r.json()
    conv = out["conversion"]
    assert out["status"] == "converted" and out["deal_id"] == conv["deal"]["id"]
    assert conv["reused"] == {"company": False, "contact": False}
    assert conv["deal"]["amount"] == "5000.00" and conv["deal"]["currency"] == "EUR"
    assert conv["deal"]["contact_id"] == conv["contact"]["id"] and conv["contact"]["company_id"] == conv["company"]["id"]
    assert conv["company"]["domain"] == "cobol.example"
    assert (await act(owner, f"leads/{lead['id']}", "convert", {})).status_code == 409
    # A second lead from the same company and person reuses both.
    r = await owner.post(f"{CRM}/leads", json={"name": "G. Hopper", "company_name": "COBOL", "email": "x@cobol.example",
                                              "phone": "+1 202 555 0199", "allow_duplicate": True})
    lead2 = r.json()
    await owner.patch(f"{CRM}/contacts/{conv['contact']['id']}", json={"phone": "+1 (202) 555-0199"})
    r = await act(owner, f"leads/{lead2['id']}", "convert", {"create_deal": False})
    assert r.status_code == 200, r.text
    conv2 = r.json()["conversion"]
    assert conv2["reused"] == {"company": True, "contact": True}
    assert conv2["company"]["id"] == conv["company"]["id"] and conv2["contact"]["id"] == conv["contact"]["id"]
    assert conv2["deal"] is None
    # All or nothing: a conversion that fails half-way (a bad stage) leaves no contact behind.
    r = await owner.post(f"{CRM}/leads", json={"name": "Alan Turing", "company_name": "Bletchley",
                                              "email": "alan@bletchley.example"})
    lead3 = r.json()
    before = len((await owner.get(f"{CRM}/contacts", params={"limit": 500})).json()["items"])
    r = await act(owner, f"leads/{lead3['id']}", "convert", {"stage_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"})
    assert r.status_code == 422
    assert len((await owner.get(f"{CRM}/contacts", params={"limit": 500})).json()["items"]) == before
    assert (await owner.get(f"{CRM}/leads/{lead3['id']}")).json()["status"] == "new"
    # Disqualified leads are not converted.
    await act(owner, f"leads/{lead3['id']}", "disqualify", {"reason": "Student project"})
    assert (await act(owner, f"leads/{lead3['id']}", "convert", {})).status_code == 409


async def test_assignment_rules_round_robin_and_territory(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    a, b, c = (await owner.add_user(), await owner.add_user(), await owner.add_user())
    r = await owner.post(f"{CRM}/assignment-rules", json={"name": "EMEA", "field": "territory", "value": "emea",
                                                          "user_ids": [c.user_id], "position": 0})
    assert r.status_code == 201, r.text
    r = await owner.post(f"{CRM}/assignment-rules", json={"name": "Everyone else", "user_ids": [a.user_id, b.user_id],
                                                          "position": 1})
    assert r.status_code == 201
    owners = []
    for i in range(4):
        r = await owner.post(f"{CRM}/leads", json={"name": f"Lead {i}"})
        owners.append(r.json()["owner_id"])
    assert owners == [a.user_id, b.user_id, a.user_id, b.user_id]
    r = await owner.post(f"{CRM}/leads", json={"name": "Berlin lead", "territory": "EMEA"})
    assert r.json()["owner_id"] == c.user_id
    r = await owner.post(f"{CRM}/leads", json={"name": "Chosen", "owner_id": a.user_id})
    assert r.json()["owner_id"] == a.user_id
    # Concurrent leads each take their own turn.
    results = await asyncio.gather(*[owner.post(f"{CRM}/leads", json={"name": f"Rush {i}"}) for i in range(6)])
    got = [x.json()["owner_id"] for x in results]
    assert sorted(got) == sorted([a.user_id, b.user_id] * 3)
    # A user of another org cannot be in a rule.
    stranger = await new_org(client, nx)
    r = await owner.post(f"{CRM}/assignment-rules", json={"name": "x", "user_ids": [stranger.user_id]})
    assert r.status_code == 422


async def test_task_activity_creates_a_task_and_follows_it(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await make_pipeline(owner)
    deal = await make_deal(owner)
    r = await owner.post(f"{CRM}/activities", json={"kind": "task", "subject": "Send the proposal",
                                                    "deal_id": deal["id"], "due_at": "2030-01-10T09:00:00Z"})
    assert r.status_code == 201, r.text
    activity = r.json()
    task = (await owner.get(f"/api/v1/tasks/tasks/{activity['task_id']}")).json()
    assert task["title"] == "Send the proposal" and task["assignee_id"] == owner.user_id
    assert task["due_at"].startswith("2030-01-10T09:00:00")
    # A failing activity creates no task: one transaction.
    tasks_before = len((await owner.get("/api/v1/tasks/tasks", params={"limit": 500})).json()["items"])
    r = await owner.post(f"{CRM}/activities", json={"kind": "task", "subject": "x"})
    assert r.status_code == 422
    assert len((await owner.get("/api/v1/tasks/tasks", params={"limit": 500})).json()["items"]) == tasks_before
    # Completing the task in the Tasks app marks the activity done (through events).
    assert (await owner.post(f"/api/v1/tasks/tasks/{task['id']}/complete")).status_code == 200
    for _ in range(200):
        if (await owner.get(f"{CRM}/activities/{activity['id']}")).json()["done"]:
            break
        await asyncio.sleep(0.05)
    assert (await owner.get(f"{CRM}/activities/{activity['id']}")).json()["done"] is True
