"""The pipeline board, the forecast (with currency conversion), the reports (JSON and CSV)
and the record timelines fed by events."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from nexus.kernel.http.app import Nexus
from tests.apps.crm.helpers import CRM, act, make_company, make_contact, make_deal, make_pipeline
from tests.factories import Actor, new_org


async def settle(nx: Nexus) -> None:
    for _ in range(400):
        if await nx.events.settled():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("events did not settle")


async def _setup_currency(owner: Actor) -> None:
    r = await owner.request("PUT", f"{CRM}/settings", json={"currency": "EUR"})
    assert r.status_code == 200, r.text
    for cur, rate, since in (("USD", "0.90000000", "2026-01-01"), ("USD", "0.80000000", "2026-06-01"),
                             ("GBP", "1.20000000", "2020-01-01")):
        r = await owner.post(f"{CRM}/rates", json={"currency": cur, "rate": rate, "valid_from": since})
        assert r.status_code == 201, r.text


async def test_board_columns_totals_and_paging(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await _setup_currency(owner)
    p = await make_pipeline(owner)
    first, second = p["stages"][0], p["stages"][1]
    made = [await make_deal(owner, amount="100.00", currency="EUR") for _ in range(4)]
    made.append(await make_deal(owner, amount="1000.00", currency="USD"))
    made.append(await make_deal(owner, amount="50.00", currency="JPY"))
    for d in made[:2]:
        await act(owner, f"deals/{d['id']}", "move", {"stage_id": second["id"]})
    r = await owner.get(f"{CRM}/pipelines/{p['id']}/board", params={"limit": 2})
    assert r.status_code == 200, r.text
    board = r.json()
    assert board["currency"] == "EUR" and board["unconverted"] == ["JPY"]
    cols = {c["stage"]["id"]: c for c in board["columns"]}
    assert [c["stage"]["name"] for c in board["columns"]] == [s["name"] for s in p["stages"]]
    c0, c1 = cols[first["id"]], cols[second["id"]]
    assert c0["count"] == 4 and c1["count"] == 2
    # 2 × 100 EUR + 1000 USD at the latest rate 0.8 (JPY has no rate: listed, not summed).
    assert Decimal(c0["total"]) == Decimal("1000.00")
    assert Decimal(c0["weighted"]) == Decimal("100.00")  # 10 % of it
    assert {x["currency"] for x in c0["by_currency"]} == {"EUR", "USD", "JPY"}
    assert Decimal(c1["total"]) == Decimal("200.00") and Decimal(c1["weighted"]) == Decimal("60.00")
    assert len(c0["items"]) == 2 and c0["next_cursor"]
    assert c1["next_cursor"] is None and {d["id"] for d in c1["items"]} == {made[0]["id"], made[1]["id"]}
    seen = [d["id"] for d in c0["items"]]
    cursor = c0["next_cursor"]
    while cursor:
        r = await owner.get(f"{CRM}/pipelines/{p['id']}/board/{first['id']}", params={"limit": 1, "cursor": cursor})
        assert r.status_code == 200, r.text
        seen += [d["id"] for d in r.json()["items"]]
        cursor = r.json()["next_cursor"]
    assert sorted(seen) == sorted(d["id"] for d in made[2:]) and len(seen) == len(set(seen))
    # Newest move or edit first.
    await owner.patch(f"{CRM}/deals/{made[2]['id']}", json={"title": "Touched"})
    top = (await owner.get(f"{CRM}/pipelines/{p['id']}/board", params={"limit": 1})).json()
    assert top["columns"][0]["items"][0]["id"] == made[2]["id"]
    # A cursor of another column, a forged one, another org: refused.
    r = await owner.get(f"{CRM}/pipelines/{p['id']}/board/{second['id']}", params={"cursor": c0["next_cursor"]})
    assert r.status_code == 400
    assert (await owner.get(f"{CRM}/pipelines/{p['id']}/board", params={"limit": 0})).status_code == 400
    assert (await owner.get(f"{CRM}/pipelines/{p['id']}/board", params={"color": "red"})).status_code == 400
    stranger = await new_org(client, nx)
    assert (await stranger.get(f"{CRM}/pipelines/{p['id']}/board")).status_code == 404


async def test_board_cards_carry_company_and_owner_names_in_one_query(
        client: httpx.AsyncClient, nx: Nexus, monkeypatch: Any) -> None:
    """The board names each card's company and owner itself (the web board makes no request
    per company or user), with one look-up for the whole page, however many cards."""
    from nexus.kernel.db import _PgConn, _SqliteConn

    owner = await new_org(client, nx)
    rep = await owner.add_user()
    p = await make_pipeline(owner)
    first, second = p["stages"][0], p["stages"][1]
    acme, globex = await make_company(owner, name="Acme Ltd"), await make_company(owner, name="Globex")
    for i in range(6):
        await make_deal(owner, company_id=(acme, globex)[i % 2]["id"],
                        owner_id=(owner.user_id, rep.user_id)[i % 2])
    lone = await make_deal(owner)  # no company, no owner
    await owner.patch(f"{CRM}/deals/{lone['id']}", json={"owner_id": None})
    moved = await make_deal(owner, company_id=acme["id"], owner_id=rep.user_id)
    await act(owner, f"deals/{moved['id']}", "move", {"stage_id": second["id"]})
    # A company deleted after the deal was made: its name is gone, the card still shows.
    gone = await make_company(owner, name="Initech")
    orphan = await make_deal(owner, company_id=gone["id"])
    assert (await owner.delete(f"{CRM}/companies/{gone['id']}")).status_code in (200, 204)

    statements: list[str] = []
    for cls in (_SqliteConn, _PgConn):
        orig = cls.fetch

        def spy(self: Any, sql: str, params: Any = (), _orig: Any = orig) -> Any:
            statements.append(sql)
            return _orig(self, sql, params)
        monkeypatch.setattr(cls, "fetch", spy)
    r = await owner.get(f"{CRM}/pipelines/{p['id']}/board", params={"limit": 20})
    assert r.status_code == 200, r.text
    name_queries = [s for s in statements if "crm_company" in s and "identity_user" in s]
    assert len(name_queries) == 1, statements
    cols = {c["stage"]["id"]: c for c in r.json()["columns"]}
    cards = {d["id"]: d for c in cols.values() for d in c["items"]}
    users = {owner.user_id: (await owner.get(f"/api/v1/identity/users/{owner.user_id}")).json()["name"],
             rep.user_id: (await owner.get(f"/api/v1/identity/users/{rep.user_id}")).json()["name"]}
    for d in cards.values():
        if d["id"] in (lone["id"], orphan["id"]):
            continue
        assert d["company_name"] == {acme["id"]: "Acme Ltd", globex["id"]: "Globex"}[d["company_id"]]
        assert d["owner_name"] == users[d["owner_id"]]
    assert cards[lone["id"]]["company_name"] is None and cards[lone["id"]]["owner_name"] is None
    assert cards[orphan["id"]]["company_name"] is None
    assert cards[moved["id"]]["stage_id"] == second["id"]
    # The column's next pages are named the same way.
    statements.clear()
    page = await owner.get(f"{CRM}/pipelines/{p['id']}/board", params={"limit": 1})
    cursor = {c["stage"]["id"]: c for c in page.json()["columns"]}[first["id"]]["next_cursor"]
    r = await owner.get(f"{CRM}/pipelines/{p['id']}/board/{first['id']}", params={"limit": 5, "cursor": cursor})
    assert r.status_code == 200, r.text
    assert all("company_name" in d and "owner_name" in d for d in r.json()["items"])
    assert any(d["company_name"] in ("Acme Ltd", "Globex") for d in r.json()["items"])


async def test_forecast_by_quarter_owner_and_pipeline(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    rep = await owner.add_user()
    await _setup_currency(owner)
    p = await make_pipeline(owner)
    await make_deal(owner, amount="1000.00", currency="EUR", probability=50, expected_close_date="2026-02-10",
                    owner_id=owner.user_id)
    await make_deal(owner, amount="2000.00", currency="USD", probability=25, expected_close_date="2026-03-01",
                    owner_id=rep.user_id, committed=True)
    await make_deal(owner, amount="1000.00", currency="USD", probability=100, expected_close_date="2026-08-15",
                    owner_id=rep.user_id)
    won = await make_deal(owner, amount="500.00", currency="GBP", expected_close_date="2026-01-05",
                          owner_id=rep.user_id)
    await act(owner, f"deals/{won['id']}", "win", {"reason": "ok"})
    lost = await make_deal(owner, amount="999.00", currency="EUR", expected_close_date="2026-02-01")
    await act(owner, f"deals/{lost['id']}", "lose", {"reason": "price"})
    r = await owner.get(f"{CRM}/forecast", params={"period": "quarter", "from": "2026-01-01", "to": "2026-12-31",
                                                  "group_by": ""})
    assert r.status_code == 200, r.text
    fc = r.json()
    rows = {x["period"]: x for x in fc["rows"]}
    assert fc["currency"] == "EUR"
    q1 = rows["2026-Q1"]
    assert q1["open_count"] == 2 and Decimal(q1["pipeline"]) == Decimal("2800.00")  # 1000 + 2000 × 0.9
    assert Decimal(q1["weighted"]) == Decimal("950.00")  # 500 + 450
    assert Decimal(q1["committed"]) == Decimal("1800.00")
    assert Decimal(rows["2026-Q3"]["pipeline"]) == Decimal("800.00")  # the later USD rate
    today = date.today()
    won_q = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    if today.year == 2026:
        assert Decimal(rows[won_q]["won"]) == Decimal("600.00") and rows[won_q]["won_count"] == 1
    # By owner: the rep's rows only hold the rep's deals.
    r = await owner.get(f"{CRM}/forecast", params={"from": "2026-01-01", "to": "2026-12-31", "group_by": "owner",
                                                  "pipeline_id": p["id"]})
    by_owner = {(x["period"], x["owner_id"]): x for x in r.json()["rows"]}
    assert Decimal(by_owner[("2026-Q1", rep.user_id)]["pipeline"]) == Decimal("1800.00")
    assert Decimal(by_owner[("2026-Q1", owner.user_id)]["weighted"]) == Decimal("500.00")
    # By month, as CSV (by parameter or by Accept).
    r = await owner.get(f"{CRM}/forecast", params={"period": "month", "from": "2026-01-01", "to": "2026-03-31",
                                                  "format": "csv", "group_by": "owner,pipeline"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(r.text)))
    assert {x["period"] for x in lines} >= {"2026-02", "2026-03"} and "weighted" in lines[0]
    r = await owner.get(f"{CRM}/forecast", params={"from": "2026-01-01", "to": "2026-12-31"},
                        headers={"Accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")
    for bad in ({"period": "week"}, {"from": "2026-13-01"}, {"from": "2026-05-01", "to": "2026-01-01"},
                {"group_by": "planet"}, {"owner_id": "../x"}):
        assert (await owner.get(f"{CRM}/forecast", params=bad)).status_code == 400, bad
    # Another org's forecast knows none of these deals.
    stranger = await new_org(client, nx)
    r = await stranger.get(f"{CRM}/forecast", params={"from": "2026-01-01", "to": "2026-12-31"})
    assert r.json()["rows"] == []


async def test_reports(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    p = await make_pipeline(owner)
    s = p["stages"]
    d = [await make_deal(owner) for _ in range(5)]
    await act(owner, f"deals/{d[1]['id']}", "move", {"stage_id": s[1]["id"]})
    await act(owner, f"deals/{d[2]['id']}", "move", {"stage_id": s[2]["id"]})
    await act(owner, f"deals/{d[3]['id']}", "win", {"reason": "fit"})
    await act(owner, f"deals/{d[4]['id']}", "lose", {"reason": "price"})
    contact = await make_contact(owner)
    for kind in ("call", "call", "email"):
        await owner.post(f"{CRM}/activities", json={"kind": kind, "subject": kind, "contact_id": contact["id"]})
    r = await owner.get(f"{CRM}/reports/pipeline", params={"pipeline_id": p["id"]})
    assert r.status_code == 200, r.text
    assert [x["deals"] for x in r.json()["rows"]] == [1, 1, 1, 0, 1, 1]
    r = await owner.get(f"{CRM}/reports/conversion", params={"pipeline_id": p["id"]})
    rows = {x["stage"]: x for x in r.json()["rows"]}
    assert rows["Lead in"]["entered"] == 5 and rows["Lead in"]["advanced"] == 3  # the lost one never moved on
    assert rows["Qualified"]["entered"] == 3 and rows["Proposal"]["entered"] == 2
    assert rows["Proposal"]["conversion_rate"] == 0.5 and rows["Negotiation"]["conversion_rate"] == 1.0
    r = await owner.get(f"{CRM}/reports/win-rate")
    assert r.json()["totals"]["won"] == 1 and r.json()["totals"]["win_rate"] == 0.5
    assert r.json()["totals"]["average_sales_cycle_days"] >= 0
    r = await owner.get(f"{CRM}/reports/activities", params={"format": "csv"})
    lines = list(csv.DictReader(io.StringIO(r.text)))
    assert lines == [{"owner_id": owner.user_id, "call": "2", "meeting": "0", "email": "1", "note": "0", "task": "0",
                      "total": "3"}]
    assert (await owner.get(f"{CRM}/reports/nothing")).status_code == 404
    assert (await owner.get(f"{CRM}/reports/pipeline")).status_code == 400
    assert (await owner.get(f"{CRM}/reports/win-rate", params={"format": "xml"})).status_code == 400


async def _timeline(actor: Actor, kind: str, rid: str, limit: int = 2) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = await actor.get(f"{CRM}/{kind}/{rid}/timeline", params=params)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("paging did not end")


async def test_timelines_are_fed_by_events(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    p = await make_pipeline(owner)
    company = await make_company(owner)
    contact = await make_contact(owner, company_id=company["id"])
    deal = await make_deal(owner, company_id=company["id"], contact_id=contact["id"])
    await owner.post(f"{CRM}/activities", json={"kind": "meeting", "subject": "Kick-off", "deal_id": deal["id"]})
    r = await owner.post(f"{CRM}/activities", json={"kind": "task", "subject": "Send quote", "deal_id": deal["id"]})
    task_id = r.json()["task_id"]
    await act(owner, f"deals/{deal['id']}", "move", {"stage_id": p["stages"][2]["id"]})
    await owner.patch(f"{CRM}/deals/{deal['id']}", json={"amount": "4321.00"})
    await owner.post(f"/api/v1/tasks/tasks/{task_id}/complete")
    await settle(nx)
    await settle(nx)  # the task's completion marks the activity done: one more round of events
    items = await _timeline(owner, "deals", deal["id"])
    titles = [i["title"] for i in items]
    assert titles[0] == "Task completed: Send quote"
    assert "Moved to Proposal" in titles and "Changed amount" in titles and "Kick-off" in titles
    assert titles[-1].startswith("Deal created")
    ats = [(i["at"], i["id"]) for i in items]
    assert ats == sorted(ats, reverse=True) and len({i["id"] for i in items}) == len(items)
    moved = next(i for i in items if i["title"] == "Moved to Proposal")
    assert moved["data"]["to_stage_id"] == p["stages"][2]["id"]
    # The deal's meeting also shows on its contact and company.
    assert "Kick-off" in [i["title"] for i in await _timeline(owner, "contacts", contact["id"])]
    assert "Kick-off" in [i["title"] for i in await _timeline(owner, "companies", company["id"])]
    kinds = (await owner.get(f"{CRM}/deals/{deal['id']}/timeline", params={"kind": "stage"})).json()["items"]
    assert [k["kind"] for k in kinds] == ["stage"]
    # Redelivering the same events adds nothing (idempotent consumer).
    from nexus.apps.crm.events import on_crm_event
    from nexus.kernel.context import system_context
    from nexus.kernel.events import to_cloudevent
    from nexus.kernel.records import UnitOfWork

    async with nx.db.reader() as conn:
        rows = await conn.fetch("SELECT id, org_id, type, source, subject, time, data, actor_id, position"
                                " FROM kernel_outbox WHERE org_id = ? AND type LIKE 'nexus.crm.%' ORDER BY id",
                                [owner.org_id])
    async with UnitOfWork(nx.db, system_context(owner.org_id)) as uow:
        for row in rows:
            ev = to_cloudevent(dict(zip(("id", "org_id", "type", "source", "subject", "time", "data", "actor_id",
                                         "position"), row, strict=True)))
            await on_crm_event(uow, ev)
    assert len(await _timeline(owner, "deals", deal["id"], limit=200)) == len(items)
    stranger = await new_org(client, nx)
    assert (await stranger.get(f"{CRM}/deals/{deal['id']}/timeline")).status_code == 404
    assert (await owner.get(f"{CRM}/deals/{deal['id']}/timeline", params={"cursor": "forged"})).status_code == 400
