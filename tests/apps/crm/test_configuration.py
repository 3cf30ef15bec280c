"""Who configures the CRM: members read the settings, rates, pipelines, stages, assignment
rules and web forms and work the deals; only admins (or a role naming the crm app) change the
configuration — the kernel's privileged resources (Resource(privileged=…))."""

from __future__ import annotations

from typing import Any

import httpx

from nexus.kernel.http.app import Nexus
from tests.apps.crm.helpers import CRM, act, make_deal, make_pipeline
from tests.factories import Actor, make_role, new_org

SITE = "https://www.example.test"


async def _configuration(owner: Actor) -> dict[str, Any]:
    p = await make_pipeline(owner)
    rate = await owner.post(f"{CRM}/rates", json={"currency": "USD", "rate": "0.90000000", "valid_from": "2026-01-01"})
    rule = await owner.post(f"{CRM}/assignment-rules", json={"name": "All", "user_ids": [owner.user_id]})
    form = await owner.post(f"{CRM}/web-forms", json={"name": "Contact us", "allowed_origins": [SITE]})
    for r in (rate, rule, form):
        assert r.status_code == 201, r.text
    return {"pipeline": p, "stage": p["stages"][0], "rate": rate.json(), "rule": rule.json(), "form": form.json()}


async def test_members_read_the_configuration_and_work_deals_but_cannot_change_it(
        client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    conf = await _configuration(owner)
    member = await owner.add_user(["member"])
    p = conf["pipeline"]

    # Reading: everything a rep needs to work the board.
    assert (await member.get(f"{CRM}/settings")).status_code == 200
    for path in (f"pipelines/{p['id']}", f"stages/{conf['stage']['id']}", f"rates/{conf['rate']['id']}",
                 f"assignment-rules/{conf['rule']['id']}", f"web-forms/{conf['form']['id']}"):
        assert (await member.get(f"{CRM}/{path}")).status_code == 200, path
    assert (await member.get(f"{CRM}/pipelines/{p['id']}/board")).status_code == 200

    # Changing: 403 with the permission named, and nothing changes.
    refused = [
        ("PUT", "settings", {"currency": "EUR"}),
        ("POST", "pipelines", {"name": "Mine"}),
        ("PATCH", f"pipelines/{p['id']}", {"name": "Renamed"}),
        ("DELETE", f"pipelines/{p['id']}", None),
        ("POST", "stages", {"pipeline_id": p["id"], "name": "Extra", "position": 9, "probability": 5, "kind": "open"}),
        ("PATCH", f"stages/{conf['stage']['id']}", {"probability": 99}),
        ("POST", "rates", {"currency": "GBP", "rate": "1.10000000", "valid_from": "2026-01-01"}),
        ("PATCH", f"rates/{conf['rate']['id']}", {"rate": "5.00000000"}),
        ("DELETE", f"rates/{conf['rate']['id']}", None),
        ("POST", "assignment-rules", {"name": "Me", "user_ids": [member.user_id]}),
        ("PATCH", f"assignment-rules/{conf['rule']['id']}", {"user_ids": [member.user_id]}),
        ("POST", "web-forms", {"name": "Spam", "allowed_origins": [SITE]}),
        ("PATCH", f"web-forms/{conf['form']['id']}", {"active": False}),
    ]
    for method, path, body in refused:
        kw: dict[str, Any] = {} if body is None else {"json": body}
        r = await member.request(method, f"{CRM}/{path}", **kw)
        assert r.status_code == 403, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await member.post(f"{CRM}/stages/import", content=b"pipeline_id,name\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 403
    assert (await owner.get(f"{CRM}/settings")).json()["currency"] == "USD"
    assert (await owner.get(f"{CRM}/pipelines/{p['id']}")).json()["name"] == p["name"]
    assert (await owner.get(f"{CRM}/stages/{conf['stage']['id']}")).json()["probability"] == conf["stage"]["probability"]
    assert (await owner.get(f"{CRM}/rates/{conf['rate']['id']}")).json()["rate"] == conf["rate"]["rate"]
    assert (await owner.get(f"{CRM}/web-forms/{conf['form']['id']}")).json()["active"] is True
    assert (await owner.get(f"{CRM}/pipelines", params={"name": "Mine"})).json()["items"] == []

    # The web app hides what the member may not do: meta says so per resource.
    meta = (await member.get("/api/v1/meta")).json()
    perms = {r["path"]: r["permissions"] for a in meta["apps"] for r in a["resources"]}
    assert perms[f"{CRM}/pipelines"]["read"] and not perms[f"{CRM}/pipelines"]["update"]
    assert not perms[f"{CRM}/rates"]["create"] and perms[f"{CRM}/deals"]["update"]

    # Working the deals is untouched: create, edit, move, win.
    deal = await make_deal(member, pipeline_id=p["id"])
    assert (await member.patch(f"{CRM}/deals/{deal['id']}", json={"title": "Bigger"})).status_code == 200
    r = await act(member, f"deals/{deal['id']}", "move", {"stage_id": p["stages"][1]["id"]})
    assert r.status_code == 200, r.text
    assert (await act(member, f"deals/{deal['id']}", "win", {"reason": "fit"})).status_code == 200


async def test_admins_and_roles_naming_the_crm_change_the_configuration(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    conf = await _configuration(owner)
    admin = await owner.add_user(["admin"])
    r = await admin.request("PUT", f"{CRM}/settings", json={"currency": "EUR"})
    assert r.status_code == 200, r.text
    assert (await admin.patch(f"{CRM}/rates/{conf['rate']['id']}", json={"rate": "0.95000000"})).status_code == 200
    assert (await admin.patch(f"{CRM}/stages/{conf['stage']['id']}", json={"probability": 15})).status_code == 200
    assert (await admin.post(f"{CRM}/pipelines", json={"name": "Renewals"})).status_code == 201
    assert (await admin.patch(f"{CRM}/web-forms/{conf['form']['id']}", json={"active": False})).status_code == 200
    # A sales-manager role that names the app configures the CRM without being an org admin...
    role = await make_role(owner, ["crm.*.*", "*.*.read"], name="sales-manager")
    manager = await owner.add_user([role["name"]])
    r = await manager.request("PUT", f"{CRM}/settings", json={"currency": "GBP"})
    assert r.status_code == 200, r.text
    assert (await manager.post(f"{CRM}/rates", json={"currency": "EUR", "rate": "1.10000000",
                                                     "valid_from": "2026-01-01"})).status_code == 201
    # ...and still reaches nothing privileged elsewhere.
    assert (await manager.get("/api/v1/audit")).status_code == 403
    # The settings change is in the audit trail.
    audit = (await owner.get("/api/v1/audit", params={"app": "crm", "resource": "settings"})).json()["items"]
    assert {e["actor_id"] for e in audit} >= {admin.user_id, manager.user_id}


async def test_merge_and_convert_inputs_name_the_records_they_pick(client: httpx.AsyncClient, nx: Nexus) -> None:
    """The web app's action dialog draws record pickers from `x-reference` in the inputs."""
    owner = await new_org(client, nx)
    meta = (await owner.get("/api/v1/meta")).json()
    res = {r["path"]: r for a in meta["apps"] for r in a["resources"]}
    for name in ("contacts", "companies", "deals"):
        merge = next(a for a in res[f"{CRM}/{name}"]["actions"] if a["name"] == "merge")
        assert merge["input"]["properties"]["duplicate_id"]["x-reference"] == f"crm.{name}"
        assert merge["input"]["required"] == ["duplicate_id"]
    convert = next(a for a in res[f"{CRM}/leads"]["actions"] if a["name"] == "convert")
    props = convert["input"]["properties"]
    assert {k: props[k]["x-reference"] for k in ("pipeline_id", "stage_id", "contact_id", "company_id")} == {
        "pipeline_id": "crm.pipelines", "stage_id": "crm.stages", "contact_id": "crm.contacts",
        "company_id": "crm.companies"}
