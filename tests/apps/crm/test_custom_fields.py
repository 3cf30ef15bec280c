"""Custom fields (a kernel feature CRM opts into): typed definitions per org, checked on
create and update, filterable, in /api/v1/meta, and carried by CSV export and import."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx

from nexus.kernel.http.app import Nexus
from tests.apps.crm.helpers import CRM, make_company, make_contact
from tests.factories import Actor, new_org

FIELDS = "/api/v1/customfields/fields"


async def _define(owner: Actor) -> dict[str, dict[str, Any]]:
    defs = [
        {"name": "shoe_size", "label": "Shoe size", "type": "number"},
        {"name": "tier", "label": "Tier", "type": "choice", "choices": ["gold", "silver"]},
        {"name": "since", "label": "Customer since", "type": "date"},
        {"name": "nickname", "label": "Nickname", "type": "text"},
        {"name": "reseller", "label": "Reseller", "type": "reference", "reference": "crm.companies"},
    ]
    out = {}
    for d in defs:
        r = await owner.post(FIELDS, json={"resource": "crm.contacts", **d})
        assert r.status_code == 201, r.text
        out[d["name"]] = r.json()
    return out


async def test_values_are_typed_and_checked(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await _define(owner)
    partner = await make_company(owner)
    c = await make_contact(owner, custom={"shoe_size": "42", "tier": "gold", "since": "2020-02-29",
                                          "nickname": "Ace", "reseller": partner["id"]})
    assert c["custom"] == {"shoe_size": 42, "tier": "gold", "since": "2020-02-29", "nickname": "Ace",
                           "reseller": partner["id"]}
    stranger = await new_org(client, nx)
    foreign = await make_company(stranger)
    for custom, pointer in (({"shoe_size": "big"}, "/custom/shoe_size"), ({"tier": "bronze"}, "/custom/tier"),
                            ({"since": "2021-02-30"}, "/custom/since"), ({"nope": 1}, "/custom/nope"),
                            ({"nickname": 5}, "/custom/nickname"), ({"reseller": foreign["id"]}, "/custom/reseller"),
                            ({"shoe_size": True}, "/custom/shoe_size")):
        r = await owner.post(f"{CRM}/contacts", json={"first_name": "X", "custom": custom})
        assert r.status_code == 422, (custom, r.text)
        assert any(e["pointer"] == pointer for e in r.json()["errors"]), (pointer, r.json())
    # PATCH merges; null removes one value.
    r = await owner.patch(f"{CRM}/contacts/{c['id']}", json={"custom": {"tier": "silver", "nickname": None}})
    assert r.status_code == 200, r.text
    assert r.json()["custom"] == {"shoe_size": 42, "tier": "silver", "since": "2020-02-29", "reseller": partner["id"]}
    # The same names mean nothing in another org.
    r = await stranger.post(f"{CRM}/contacts", json={"first_name": "Y", "custom": {"tier": "gold"}})
    assert r.status_code == 422
    # Required fields must be present on create, and cannot be removed.
    r = await owner.post(FIELDS, json={"resource": "crm.contacts", "name": "region", "label": "Region",
                                       "type": "text", "required": True})
    assert r.status_code == 201
    r = await owner.post(f"{CRM}/contacts", json={"first_name": "Z"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/custom/region"
    z = await make_contact(owner, custom={"region": "North"})
    r = await owner.patch(f"{CRM}/contacts/{z['id']}", json={"custom": {"region": None}})
    assert r.status_code == 422
    # A field name is unique per resource; the type cannot change.
    r = await owner.post(FIELDS, json={"resource": "crm.contacts", "name": "tier", "label": "T", "type": "text"})
    assert r.status_code == 422
    region = (await owner.get(FIELDS, params={"name": "region"})).json()["items"][0]
    r = await owner.patch(f"{FIELDS}/{region['id']}", json={"type": "number"})
    assert r.status_code == 422
    assert (await owner.delete(f"{FIELDS}/{region['id']}")).status_code == 204
    assert (await owner.post(f"{CRM}/contacts", json={"first_name": "Q"})).status_code == 201


async def test_filters_on_custom_fields(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await _define(owner)
    a = await make_contact(owner, custom={"shoe_size": 38, "tier": "gold", "since": "2019-05-01", "nickname": "Al"})
    b = await make_contact(owner, custom={"shoe_size": 44.5, "tier": "silver", "since": "2023-01-01"})
    c = await make_contact(owner)

    async def ids(**params: str) -> set[str]:
        r = await owner.get(f"{CRM}/contacts", params=params)
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert await ids(**{"custom.tier": "gold"}) == {a["id"]}
    assert await ids(**{"custom.shoe_size[gte]": "40"}) == {b["id"]}
    assert await ids(**{"custom.shoe_size[lt]": "100"}) == {a["id"], b["id"]}
    assert await ids(**{"custom.since[lt]": "2020-01-01"}) == {a["id"]}
    assert await ids(**{"custom.tier[in]": "gold,silver"}) == {a["id"], b["id"]}
    assert await ids(**{"custom.tier[isnull]": "true"}) == {c["id"]}
    assert await ids(**{"custom.nickname[startswith]": "A"}) == {a["id"]}
    for bad in ({"custom.nope": "1"}, {"custom.shoe_size[startswith]": "4"}, {"custom.shoe_size[gt]": "big"},
                {"custom.since[gt]": "yesterday"}, {"custom.tier[isnull]": "maybe"}):
        r = await owner.get(f"{CRM}/contacts", params=bad)
        assert r.status_code == 400, (bad, r.text)
    # Paging under a custom filter keeps to it.
    page = (await owner.get(f"{CRM}/contacts", params={"custom.shoe_size[gt]": "0", "limit": 1})).json()
    r = await owner.get(f"{CRM}/contacts", params={"custom.shoe_size[gt]": "0", "limit": 1,
                                                   "cursor": page["next_cursor"]})
    assert len(r.json()["items"]) == 1 and r.json()["next_cursor"] is None
    r = await owner.get(f"{CRM}/contacts", params={"custom.shoe_size[gt]": "1", "cursor": page["next_cursor"]})
    assert r.status_code == 400  # a cursor belongs to its own filters


async def test_meta_export_and_import_carry_custom_fields(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await _define(owner)
    meta = (await owner.get("/api/v1/meta")).json()
    res = next(r for a in meta["apps"] for r in a["resources"] if r["path"] == f"{CRM}/contacts")
    custom = {f["key"]: f for f in res["custom_fields"]}
    assert custom["tier"]["choices"] == ["gold", "silver"] and custom["tier"]["name"] == "custom.tier"
    assert custom["reseller"]["reference"] == "crm.companies" and "gte" in custom["shoe_size"]["operators"]
    await make_contact(owner, email="ex@example.com", custom={"tier": "gold", "shoe_size": 41})
    r = await owner.get(f"{CRM}/contacts/export", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0]["custom.tier"] == "gold" and rows[0]["custom.shoe_size"] == "41" and "custom" not in rows[0]
    # A spreadsheet with its own column names, mapped; the dry run checks without writing.
    sheet = ("Given,Family,E-mail,Level,Size,Ignore me\n"
             "Mia,Wong,mia@example.com,silver,39,x\n"
             "Bad,Row,bad@example.com,platinum,40,x\n")
    mapping = json.dumps({"Given": "first_name", "Family": "last_name", "E-mail": "email", "Level": "custom.tier",
                          "Size": "custom.shoe_size", "Ignore me": ""})
    r = await owner.post(f"{CRM}/contacts/import", params={"mapping": mapping, "dry_run": "true", "mode": "partial"},
                         content=sheet.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dry_run"] is True and body["valid"] == 1 and body["created"] == 0 and not body["committed"]
    assert body["errors"][0]["row"] == 3 and body["errors"][0]["errors"][0]["pointer"] == "/custom/tier"
    assert (await owner.get(f"{CRM}/contacts", params={"email": "mia@example.com"})).json()["items"] == []
    r = await owner.post(f"{CRM}/contacts/import", params={"mapping": mapping, "mode": "partial"},
                         content=sheet.encode(), headers={"Content-Type": "text/csv"})
    assert r.json()["created"] == 1
    mia = (await owner.get(f"{CRM}/contacts", params={"email": "mia@example.com"})).json()["items"][0]
    assert mia["custom"] == {"tier": "silver", "shoe_size": 39} and mia["name"] == "Mia Wong"
    for bad in ("not json", json.dumps(["x"]), json.dumps({"Nope": "email"}),
                json.dumps({"Given": "email", "E-mail": "email"})):
        r = await owner.post(f"{CRM}/contacts/import", params={"mapping": bad}, content=sheet.encode(),
                             headers={"Content-Type": "text/csv"})
        assert r.status_code == 400, (bad, r.text)


async def test_only_admins_define_fields_but_members_fill_them_in(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await _define(owner)
    member = await owner.add_user(["member"])
    r = await member.post(FIELDS, json={"resource": "crm.contacts", "name": "mood", "label": "Mood", "type": "text"})
    assert r.status_code == 403, r.text
    field = (await owner.get(FIELDS, params={"name": "tier"})).json()["items"][0]
    r = await member.patch(f"{FIELDS}/{field['id']}", json={"label": "Level"})
    assert r.status_code == 403, r.text
    # The member still sees the fields on the form (meta) and fills them in on records.
    meta = (await member.get("/api/v1/meta")).json()
    contacts = next(res for app in meta["apps"] for res in app["resources"]
                    if res["app"] == "crm" and res["name"] == "contacts")
    assert {f["key"] for f in contacts["custom_fields"]} >= {"tier", "shoe_size"}
    c = await make_contact(member, custom={"tier": "gold"})
    assert c["custom"] == {"tier": "gold"}
