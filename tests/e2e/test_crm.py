"""CRM in the browser: the pipeline board (drag a deal to another stage, the column totals
follow), a deal's page (the move on its timeline, a logged call, won and reopen), and the
forecast's weighted total. Data is made through the API, a pipeline per test."""

from __future__ import annotations

import re
import time
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from .conftest import ADMIN, OTHER_ADMIN, Server, shot, sign_in
from .test_notes import AXE, _axe

pytestmark = pytest.mark.e2e
expect = pytest.importorskip("playwright.sync_api", reason="e2e: the playwright package is missing").expect


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def pipeline(server: Server, h: dict[str, str], name: str) -> tuple[str, dict[str, str]]:
    """A pipeline with two open stages, won and lost; the org currency is EUR."""
    server.api("PUT", "/api/v1/crm/settings", h, json={"currency": "EUR"})
    p = server.api("POST", "/api/v1/crm/pipelines", h, json={"name": name})
    stages = {}
    for pos, (stage, prob, kind) in enumerate([("Qualified", 20, "open"), ("Proposal", 60, "open"),
                                                ("Won", 100, "won"), ("Lost", 0, "lost")]):
        s = server.api("POST", "/api/v1/crm/stages", h, json={"pipeline_id": p["id"], "name": stage, "position": pos,
                                                              "probability": prob, "kind": kind})
        stages[stage] = s["id"]
    return p["id"], stages


def deal(server: Server, h: dict[str, str], title: str, amount: str, stage_id: str, **extra: Any) -> dict[str, Any]:
    close = (date.today() + timedelta(days=5)).isoformat()
    return server.api("POST", "/api/v1/crm/deals", h, json={"title": title, "amount": amount, "currency": "EUR",
                                                             "stage_id": stage_id, "expected_close_date": close,
                                                             **extra})


def column(page: Any, name: str) -> Any:
    return page.get_by_role("listitem", name=f"{name} column")


def test_board_drag_moves_a_deal_and_its_totals(page: Any, server: Server) -> None:
    h = server.token(*ADMIN)
    me = server.api("GET", "/api/v1/identity/me", h)["id"]
    pid, stages = pipeline(server, h, f"Board {uuid.uuid4().hex[:6]}")
    acme = server.api("POST", "/api/v1/crm/companies", h, json={"name": "Acme Ltd", "allow_duplicate": True})
    moving = deal(server, h, "Acme rollout", "1000.00", stages["Qualified"], owner_id=me, company_id=acme["id"])
    deal(server, h, "Globex pilot", "500.00", stages["Qualified"], owner_id=me)
    deal(server, h, "Initech renewal", "200.00", stages["Proposal"])

    sign_in(page, *ADMIN)
    page.goto(f"/crm?pipeline={pid}")
    qualified, proposal = column(page, "Qualified"), column(page, "Proposal")
    expect(qualified.get_by_test_id("column-total")).to_have_text("€1,500.00")
    expect(qualified.get_by_test_id("column-count")).to_have_text("2")
    expect(proposal.get_by_test_id("column-total")).to_have_text("€200.00")
    expect(qualified.get_by_text("Acme Ltd")).to_be_visible()
    shot(page, "40-crm-board")

    # Drag the card (HTML5 drag and drop in Chromium) to the next stage.
    qualified.locator("article", has_text="Acme rollout").drag_to(proposal)
    expect(proposal.locator("article", has_text="Acme rollout")).to_be_visible()
    expect(proposal.get_by_test_id("column-total")).to_have_text("€1,200.00")
    expect(proposal.get_by_test_id("column-count")).to_have_text("2")
    expect(qualified.get_by_test_id("column-total")).to_have_text("€500.00")
    got = wait_for(lambda: server.api("GET", f"/api/v1/crm/deals/{moving['id']}", h)["stage_id"] == stages["Proposal"])
    assert got, "the move did not reach the server"
    # And stays so after a reload: the totals are the server's.
    page.reload()
    expect(column(page, "Proposal").get_by_test_id("column-total")).to_have_text("€1,200.00")

    # The keyboard moves too; a lost column asks for a reason first.
    card = column(page, "Qualified").locator("article", has_text="Globex pilot")
    card.focus()
    page.keyboard.press("Alt+ArrowRight")
    expect(column(page, "Proposal").locator("article", has_text="Globex pilot")).to_be_visible()
    column(page, "Proposal").locator("article", has_text="Initech renewal").drag_to(column(page, "Lost"))
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Mark as lost")).to_be_disabled()
    dialog.get_by_label(re.compile("Why was it lost")).fill("Budget cut")
    dialog.get_by_role("button", name="Mark as lost").click()
    expect(column(page, "Lost").get_by_test_id("column-total")).to_have_text("€200.00")
    expect(column(page, "Proposal").get_by_test_id("column-count")).to_have_text("2")

    # Quick add in a column, then the "My deals" filter.
    column(page, "Qualified").get_by_label("New deal in Qualified").fill("Hooli trial")
    column(page, "Qualified").get_by_label(re.compile("Amount of the new deal")).fill("80")
    column(page, "Qualified").get_by_role("button", name="Add").click()
    expect(column(page, "Qualified").get_by_test_id("column-total")).to_have_text("€80.00")
    page.get_by_label("Owner").select_option("me")
    expect(column(page, "Proposal").get_by_test_id("column-count")).to_have_text("2")
    expect(column(page, "Lost").get_by_test_id("column-count")).to_have_text("0")
    shot(page, "41-crm-board-moved")

    # Open the moved deal: the move is on its timeline and in its stage history.
    assert wait_for(lambda: any(i["kind"] == "stage" for i in server.api(
        "GET", f"/api/v1/crm/deals/{moving['id']}/timeline", h)["items"])), "no timeline entry for the move"
    column(page, "Proposal").get_by_role("link", name="Acme rollout").click()
    page.get_by_role("heading", name=re.compile("Acme rollout")).wait_for()
    timeline = page.get_by_role("list", name="Timeline")
    expect(timeline.get_by_text("Moved to Proposal")).to_be_visible()
    history = page.get_by_role("list", name="Stage history")
    expect(history.get_by_text("Proposal")).to_be_visible()
    expect(history.get_by_text("Qualified")).to_be_visible()

    # Log a call; it shows on the timeline.
    page.get_by_role("radio", name="Call").click()
    page.get_by_label("Subject").fill("Talked budget with Dana")
    page.get_by_label("Details").fill("Wants a pilot in March.")
    page.get_by_role("button", name="Log call").click()
    expect(timeline.get_by_text("Talked budget with Dana")).to_be_visible()
    acts = server.api("GET", f"/api/v1/crm/activities?deal_id={moving['id']}", h)["items"]
    assert [a["kind"] for a in acts] == ["call"]
    shot(page, "42-crm-deal", full=True)

    # Won, with a reason; then reopened.
    page.get_by_role("button", name="Won", exact=True).click()
    page.get_by_role("dialog").get_by_label(re.compile("Why was it won")).fill("Best fit")
    page.get_by_role("dialog").get_by_role("button", name="Mark as won").click()
    expect(page.get_by_role("button", name="Reopen")).to_be_visible()
    assert server.api("GET", f"/api/v1/crm/deals/{moving['id']}", h)["status"] == "won"
    expect(timeline.get_by_text(re.compile(r"Won \(Won\)"))).to_be_visible(timeout=10_000)
    page.get_by_role("button", name="Reopen").click()
    expect(page.get_by_role("button", name="Won", exact=True)).to_be_visible()
    assert server.api("GET", f"/api/v1/crm/deals/{moving['id']}", h)["stage_id"] == stages["Proposal"]


def test_forecast_shows_weighted_and_committed(page: Any, server: Server) -> None:
    h = server.token(*ADMIN)
    me = server.api("GET", "/api/v1/identity/me", h)["id"]
    pid, stages = pipeline(server, h, f"Forecast {uuid.uuid4().hex[:6]}")
    deal(server, h, "Umbrella", "1000.00", stages["Qualified"], owner_id=me)         # 20 % → 200
    deal(server, h, "Soylent", "500.00", stages["Proposal"], owner_id=me)            # 60 % → 300
    deal(server, h, "Tyrell", "300.00", stages["Proposal"], committed=True, owner_id=me)  # 60 % → 180, committed 300
    api = server.api("GET", f"/api/v1/crm/forecast?pipeline_id={pid}&group_by=", h)
    assert api["totals"]["weighted"] == "680.00" and api["totals"]["committed"] == "300.00"

    sign_in(page, *ADMIN)
    page.goto(f"/crm/forecast?pipeline={pid}")
    expect(page.get_by_test_id("forecast-weighted")).to_have_text("€680.00")
    expect(page.get_by_test_id("forecast-committed")).to_have_text("€300.00")
    expect(page.get_by_test_id("forecast-pipeline")).to_have_text("€1,800.00")
    table = page.get_by_role("table")
    expect(table.get_by_role("row").filter(has_text="Admin")).to_contain_text("€680.00")
    page.get_by_role("radio", name="Committed").click()
    expect(table.get_by_role("row").filter(has_text="Admin")).to_contain_text("€300.00")
    page.get_by_label("Period", exact=True).select_option("month")
    expect(page.get_by_role("columnheader", name=re.compile(r"\w{3} \d{4}")).first).to_be_visible()
    shot(page, "43-crm-forecast")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export CSV").click()
    csv = dl.value.path().read_text()
    assert csv.splitlines()[0].startswith("period,")
    assert "680.00" in csv or "300.00" in csv

    # Reports: pipeline by stage for this pipeline, as a table and as CSV.
    page.get_by_role("tab", name="Reports").click()
    page.get_by_label("Report", exact=True).select_option("pipeline")
    page.get_by_label("Pipeline", exact=True).select_option(pid)
    proposal = page.get_by_role("row").filter(has_text="Proposal")
    expect(proposal).to_contain_text("€800.00")
    expect(proposal).to_contain_text("€480.00")
    shot(page, "46-crm-reports")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export CSV").click()
    lines = dl.value.path().read_text().splitlines()
    assert lines[0].startswith("stage_id,stage,kind") and any(",Proposal,open," in x and "800.00" in x for x in lines)


def test_board_column_loads_more(page: Any, server: Server) -> None:
    h = server.token(*ADMIN)
    pid, stages = pipeline(server, h, f"Busy {uuid.uuid4().hex[:6]}")
    for i in range(23):
        deal(server, h, f"Lead deal {i:02d}", "10.00", stages["Qualified"])
    sign_in(page, *ADMIN)
    page.goto(f"/crm?pipeline={pid}")
    qualified = column(page, "Qualified")
    expect(qualified.get_by_test_id("column-count")).to_have_text("23")
    expect(qualified.get_by_test_id("column-total")).to_have_text("€230.00")
    expect(qualified.locator("article")).to_have_count(20)
    qualified.get_by_role("button", name=re.compile("Load more")).click()
    expect(qualified.locator("article")).to_have_count(23)
    expect(qualified.get_by_role("button", name=re.compile("Load more"))).to_have_count(0)
    expect(qualified.get_by_text("Lead deal 00")).to_be_visible()


def test_contact_and_company_pages_timeline_scrolls(page: Any, server: Server) -> None:
    h = server.token(*ADMIN)
    _pid, stages = pipeline(server, h, f"Pages {uuid.uuid4().hex[:6]}")
    company = server.api("POST", "/api/v1/crm/companies", h, json={"name": "Wayne Enterprises", "domain": "wayne.test",
                                                                    "allow_duplicate": True})
    person = server.api("POST", "/api/v1/crm/contacts", h, json={
        "first_name": "Lucius", "last_name": "Fox", "email": f"lucius.{uuid.uuid4().hex[:6]}@wayne.test",
        "job_title": "CEO", "company_id": company["id"], "allow_duplicate": True})
    deal(server, h, "Wayne armour", "9000.00", stages["Proposal"], company_id=company["id"], contact_id=person["id"])
    for i in range(45):
        server.api("POST", "/api/v1/crm/activities", h, json={
            "kind": "call" if i % 2 else "meeting", "subject": f"Touchpoint {i:02d}", "contact_id": person["id"],
            "occurred_at": f"2026-0{1 + i // 10}-{10 + i % 10:02d}T10:00:00Z"})
    assert wait_for(lambda: len(server.api("GET", f"/api/v1/crm/contacts/{person['id']}/timeline?limit=100", h)
                                ["items"]) >= 46), "the activities did not reach the timeline"

    sign_in(page, *ADMIN)
    page.goto(f"/crm/contacts/{person['id']}")
    page.get_by_role("heading", name=re.compile("Lucius Fox")).wait_for()
    timeline = page.get_by_role("list", name="Timeline")
    expect(timeline.get_by_text("Touchpoint 44")).to_be_visible()
    expect(timeline.get_by_text("Touchpoint 00")).to_have_count(0)
    expect(page.get_by_role("region", name="Deals").get_by_role("link", name="Wayne armour")).to_be_visible()
    # Infinite scroll: the oldest entries load as the end of the list comes into view.
    page.get_by_role("button", name="Show older").scroll_into_view_if_needed()
    expect(timeline.get_by_text("Touchpoint 00")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "44-crm-contact")

    page.get_by_role("complementary", name="About").get_by_role("link", name="Wayne Enterprises").click()
    page.get_by_role("heading", name=re.compile("Wayne Enterprises")).wait_for()
    expect(page.get_by_role("list", name="Timeline").get_by_text("New deal: Wayne armour")).to_be_visible()
    expect(page.get_by_role("region", name="People").get_by_role("link", name="Lucius Fox")).to_be_visible()
    page.get_by_role("radio", name="Note").click()
    page.get_by_label("Subject").fill("Prefers email")
    page.get_by_role("button", name="Log note").click()
    expect(page.get_by_role("list", name="Timeline").get_by_text("Prefers email")).to_be_visible()
    # The placeholder gives way to the entry the activity's event wrote.
    expect(page.locator("[data-pending]")).to_have_count(0, timeout=10_000)
    shot(page, "45-crm-company")

    # Someone of another organisation gets "not found", not the record.
    other = browser_page_for_other_org(page)
    other.goto(f"/crm/contacts/{person['id']}")
    expect(other.get_by_text(re.compile("does not exist or you may not see it"))).to_be_visible()
    other.context.close()


def browser_page_for_other_org(page: Any) -> Any:
    ctx = page.context.browser.new_context(base_url=page.url.split("/crm")[0], viewport={"width": 1366, "height": 860})
    ctx.set_default_timeout(15_000)
    pg = ctx.new_page()
    sign_in(pg, OTHER_ADMIN[0], OTHER_ADMIN[1], "second")
    return pg


@pytest.mark.skipif(not AXE.exists(), reason="e2e: axe-core is missing (cd web && npm ci)")
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_crm_pages_are_axe_clean(browser: Any, server: Server, scheme: str) -> None:
    h = server.token(*ADMIN)
    me = server.api("GET", "/api/v1/identity/me", h)["id"]
    pid, stages = pipeline(server, h, f"Axe {scheme}")
    company = server.api("POST", "/api/v1/crm/companies", h, json={"name": f"Axe Co {scheme}", "allow_duplicate": True})
    d = deal(server, h, "Axe deal", "1234.00", stages["Qualified"], owner_id=me, company_id=company["id"])
    server.api("POST", f"/api/v1/crm/deals/{d['id']}/move", h, json={"stage_id": stages["Proposal"]})
    deal(server, h, "Axe lost", "10.00", stages["Qualified"])
    server.api("POST", "/api/v1/crm/activities", h, json={"kind": "call", "subject": "Axe call", "deal_id": d["id"]})
    # bypass_csp: the server's CSP (rightly) forbids the inline script axe arrives as.
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1366, "height": 860}, color_scheme=scheme,
                              bypass_csp=True)
    page = ctx.new_page()
    problems: list[str] = []
    try:
        sign_in(page, *ADMIN)
        page.goto(f"/crm?pipeline={pid}")
        page.get_by_role("listitem", name="Proposal column").get_by_text("Axe deal").wait_for()
        problems += _axe(page, "pipeline board")
        page.goto(f"/crm/forecast?pipeline={pid}")
        page.get_by_role("table").wait_for()
        problems += _axe(page, "forecast")
        page.goto(f"/crm/reports?report=pipeline&pipeline={pid}")
        page.get_by_role("table").wait_for()
        problems += _axe(page, "reports")
        page.goto(f"/crm/deals/{d['id']}")
        page.get_by_role("list", name="Stage history").wait_for()
        problems += _axe(page, "deal page")
        page.goto(f"/crm/companies/{company['id']}")
        page.get_by_role("list", name="Timeline").wait_for()
        problems += _axe(page, "company page")
    finally:
        ctx.close()
    assert not problems, "serious/critical accessibility problems:\n" + "\n".join(problems)


def test_convert_a_lead_and_import_contacts_from_a_vcard(page: Any, server: Server, tmp_path: Any) -> None:
    h = server.token(*ADMIN)
    tag = uuid.uuid4().hex[:6]
    lead = server.api("POST", "/api/v1/crm/leads", h, json={"name": f"Grace {tag}", "email": f"grace-{tag}@example.com",
                                                             "company_name": f"Navy {tag}", "allow_duplicate": True})
    sign_in(page, *ADMIN)
    # The generic lead view offers the lead's actions; Convert opens its input as a form.
    page.goto(f"/r/crm/leads/{lead['id']}")
    page.get_by_role("button", name="Convert").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Create deal").uncheck()
    dialog.get_by_role("button", name="Convert").click()
    expect(dialog).to_be_hidden()
    done = wait_for(lambda: server.api("GET", f"/api/v1/crm/leads/{lead['id']}", h).get("converted_at"))
    assert done, "the lead was converted"
    contacts = server.api("GET", f"/api/v1/crm/contacts?email=grace-{tag}@example.com", h)["items"]
    assert len(contacts) == 1

    # Contacts: import a vCard file, the new contact is listed.
    card = tmp_path / "people.vcf"
    card.write_text(f"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ada {tag}\r\nN:{tag};Ada;;;\r\n"
                    f"EMAIL:ada-{tag}@example.com\r\nEND:VCARD\r\n")
    page.goto("/crm/contacts")
    page.get_by_label("vCard file").set_input_files(str(card))
    expect(page.get_by_text("1 of 1 contact imported.")).to_be_visible()
    assert server.api("GET", f"/api/v1/crm/contacts?email=ada-{tag}@example.com", h)["items"]
    expect(page.get_by_role("button", name="Export vCard")).to_be_visible()
