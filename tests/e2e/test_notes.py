"""Notes in the browser, universal search finding a note, a live notification, and axe on the main pages."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from .conftest import ADMIN, ROOT, Server, shot, sign_in

pytestmark = pytest.mark.e2e
expect = pytest.importorskip("playwright.sync_api", reason="e2e: the playwright package is missing").expect

AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
MEMBER = ("colleague@example.com", "colleague-pass-123")


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def member(server: Server) -> tuple[dict[str, str], str]:
    """A second person in the admin's org (created once), signed in over the API."""
    h = server.token(*ADMIN)
    found = server.api("GET", "/api/v1/identity/users?email=" + MEMBER[0], h)["items"]
    if not found:
        server.api("POST", "/api/v1/identity/users", h, json={"email": MEMBER[0], "name": "Casey Colleague",
                                                               "password": MEMBER[1]})
    me = server.token(*MEMBER)
    return me, server.api("GET", "/api/v1/identity/me", me)["id"]


def test_notes_editor_autosaves_tags_pin_history(page: Any, server: Server) -> None:
    sign_in(page, *ADMIN)
    page.goto("/notes")
    page.get_by_role("button", name="New notebook").click()
    page.get_by_label("Notebook name").fill("Field trips")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("heading", name="Field trips").wait_for()
    page.get_by_role("button", name="New note", exact=True).click()
    title = page.get_by_label("Title", exact=True)
    expect(title).to_have_value("Untitled note")
    title.fill("Lighthouse walk")
    body = page.get_by_role("textbox", name="Note body")
    body.click()
    page.keyboard.type("Bring the binoculars and a flask of tea.")
    page.get_by_role("button", name="Bold").click()
    page.keyboard.type(" Leave at nine.")
    page.get_by_label("Tags").fill("outdoors")
    page.get_by_label("Tags").press("Enter")
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible(timeout=10_000)
    h = server.token(*ADMIN)
    note = wait_for(lambda: next((n for n in server.api("GET", "/api/v1/notes/notes?limit=50", h)["items"]
                                  if n["title"] == "Lighthouse walk" and "outdoors" in n["tags"]), None))
    assert note, "the note was not autosaved"
    assert "binoculars" in note["body"] and ("<b>" in note["body"] or "<strong>" in note["body"])
    assert note["notebook_id"]
    page.get_by_role("button", name="Pin").click()
    page.get_by_role("button", name="Unpin").wait_for()
    assert wait_for(lambda: server.api("GET", f"/api/v1/notes/notes/{note['id']}", h)["pinned"])
    page.get_by_role("link", name=re.compile("Lighthouse walk")).wait_for()
    shot(page, "24-notes")

    # Someone else changes it: my next save gets 412 and says so.
    server.api("PATCH", f"/api/v1/notes/notes/{note['id']}", h, json={"title": "Lighthouse walk (edited elsewhere)"})
    body.click()
    page.keyboard.press("End")
    page.keyboard.type(" Sandwiches too.")
    page.get_by_text("Changed by someone else", exact=True).wait_for()
    shot(page, "25-notes-conflict")
    page.get_by_role("button", name="Reload (discard my changes)").click()
    expect(title).to_have_value("Lighthouse walk (edited elsewhere)")

    page.get_by_role("button", name="History").click()
    dialog = page.get_by_role("dialog", name="Version history")
    dialog.get_by_role("button", name=re.compile("^Version")).first.click()
    shot(page, "26-notes-history")
    dialog.get_by_role("button", name=re.compile("^Restore version")).click()
    page.get_by_text(re.compile("Restored version")).wait_for()
    md = page.get_by_role("link", name="Export Markdown")
    assert md.get_attribute("href") == f"/api/v1/notes/notes/{note['id']}/markdown"


def test_search_finds_a_note(page: Any, server: Server) -> None:
    sign_in(page, *ADMIN)
    page.goto("/notes")
    page.get_by_role("button", name="New note", exact=True).click()
    page.get_by_label("Title", exact=True).fill("Quarterly offsite ideas")
    page.get_by_role("textbox", name="Note body").click()
    page.keyboard.type("Kayaking on the fjord, then a sauna.")
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible(timeout=10_000)
    # The search index follows record events: wait until it has the note.
    h = server.token(*ADMIN)
    assert wait_for(lambda: server.api("GET", "/api/v1/search?q=fjord", h)["total"] > 0), "the note was not indexed"
    page.goto("/")
    search = page.get_by_role("combobox", name="Search everything")
    search.fill("fjord")
    hit = page.get_by_role("option", name=re.compile("Quarterly offsite ideas"))
    hit.wait_for()
    shot(page, "27-search-finds-note")
    hit.click()
    page.wait_for_url("**/notes/n/**")
    expect(page.get_by_label("Title", exact=True)).to_have_value("Quarterly offsite ideas")
    expect(page.get_by_role("textbox", name="Note body")).to_contain_text("Kayaking on the fjord")


def test_a_notification_arrives_live(page: Any, browser: Any, server: Server) -> None:
    member_h, _ = member(server)
    admin_id = server.api("GET", "/api/v1/identity/me", server.token(*ADMIN))["id"]
    sign_in(page, *ADMIN)
    bell = page.locator(".bell > button")
    bell.wait_for()
    before = bell.get_attribute("aria-label") or ""
    count = int(m.group(1)) if (m := re.search(r"(\d+) unread", before)) else 0
    page.wait_for_timeout(500)  # the WebSocket subscribes

    # The colleague, signed in in a browser of their own, shares a note with the admin.
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 800})
    other = ctx.new_page()
    try:
        sign_in(other, *MEMBER)
        note = server.api("POST", "/api/v1/notes/notes", member_h, json={"title": "Budget draft for review",
                                                                         "body": "<p>Numbers inside.</p>"})
        other.goto(f"/notes/n/{note['id']}")
        other.get_by_role("button", name="Share").click()
        dialog = other.get_by_role("dialog", name="Share this note")
        picker = dialog.get_by_label("Colleague")
        if picker.evaluate("e => e.tagName") == "SELECT":
            picker.select_option(admin_id)
        else:
            picker.fill(admin_id)
        dialog.get_by_label("Access").select_option("edit")
        dialog.get_by_role("button", name="Share", exact=True).click()
        dialog.get_by_text("can edit", exact=True).wait_for()
        shot(other, "28-notes-share-dialog")
    finally:
        ctx.close()

    expect(bell).to_have_attribute("aria-label", f"Notifications, {count + 1} unread", timeout=10_000)
    bell.click()
    page.get_by_role("dialog", name="Notifications").get_by_text("Budget draft for review").wait_for()
    shot(page, "29-notification-live")


def _axe(page: Any, name: str) -> list[str]:
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(200)
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.id} (${v.impact}): ${v.help} — ` + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
    }""")
    return [f"{name}: {v}" for v in result]


@pytest.mark.skipif(not AXE.exists(), reason="e2e: axe-core is missing (cd web && npm ci)")
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_main_pages_are_axe_clean(browser: Any, server: Server, scheme: str) -> None:
    h = server.token(*ADMIN)
    task = server.api("POST", "/api/v1/tasks/tasks", h, json={"title": "Axe check task", "checklist": [{"text": "One", "done": True}]})
    note = server.api("POST", "/api/v1/notes/notes", h, json={"title": "Axe check note", "body": "<h2>Plan</h2><ul><li>one</li></ul>",
                                                             "tags": ["a11y"]})
    # bypass_csp: the server's CSP (rightly) forbids the inline script axe arrives as.
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1366, "height": 860}, color_scheme=scheme,
                              bypass_csp=True)
    page = ctx.new_page()
    problems: list[str] = []
    try:
        page.goto("/")
        page.get_by_role("heading", name="Sign in").wait_for()
        problems += _axe(page, "sign-in")
        sign_in(page, *ADMIN)
        page.get_by_role("heading", name="Good", exact=False).wait_for()
        problems += _axe(page, "home")
        page.get_by_role("button", name="Apps").click()
        page.get_by_role("dialog", name="Apps").wait_for()
        problems += _axe(page, "launcher")
        page.keyboard.press("Escape")
        page.goto("/r/tasks/tasks")
        page.get_by_role("link", name="Axe check task").first.wait_for()
        problems += _axe(page, "generic list")
        page.goto("/r/tasks/tasks/new")
        page.get_by_role("heading", name="New task").wait_for()
        problems += _axe(page, "record form")
        page.goto(f"/r/tasks/tasks/{task['id']}/edit")
        page.get_by_role("button", name="Save changes").wait_for()
        problems += _axe(page, "record edit form")
        page.goto(f"/r/notes/notes/{note['id']}")
        page.get_by_role("heading", name="Axe check note").wait_for()
        problems += _axe(page, "note detail (generic)")
        page.goto("/tasks")
        page.get_by_role("listitem", name="To do column").wait_for()
        problems += _axe(page, "tasks board")
        page.goto(f"/notes/n/{note['id']}")
        page.get_by_role("textbox", name="Note body").wait_for()
        problems += _axe(page, "notes")
        if scheme == "light":
            page.goto(f"/r/tasks/tasks/{task['id']}/edit")
            page.get_by_role("button", name="Save changes").wait_for()
            page.get_by_role("button", name="Add an item").scroll_into_view_if_needed()
            shot(page, "30-generic-form-checklist")
            page.goto(f"/r/notes/notes/{note['id']}")
            page.get_by_role("heading", name="Axe check note").wait_for()
            shot(page, "31-note-detail-generic-html")
            page.goto("/r/identity/users/new")
            page.get_by_label("Password").wait_for()
            shot(page, "32-generic-user-form-password")
    finally:
        ctx.close()
    assert not problems, "serious/critical accessibility problems:\n" + "\n".join(problems)


def test_notes_at_phone_width(browser: Any, server: Server) -> None:
    ctx = browser.new_context(base_url=server.url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    try:
        h = server.token(*ADMIN)
        note = server.api("POST", "/api/v1/notes/notes", h, json={"title": "Phone note", "body": "<p>Small screens.</p>"})
        sign_in(page, *ADMIN)
        page.goto("/notes")
        page.get_by_role("link", name=re.compile("Phone note")).wait_for()
        shot(page, "33-phone-notes-list")
        page.goto(f"/notes/n/{note['id']}")
        page.get_by_role("textbox", name="Note body").wait_for()
        shot(page, "34-phone-note")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "the page scrolls sideways"
    finally:
        ctx.close()


