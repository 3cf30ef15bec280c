"""The Hub in a real browser against a real server: sign-in, generic forms, the board, org admin."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .conftest import ADMIN, OTHER_ADMIN, Server, shot, sign_in, sign_out

pytestmark = pytest.mark.e2e
expect = pytest.importorskip("playwright.sync_api", reason="e2e: the playwright package is missing").expect


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_sign_in_wrong_password_session_survives_reload_and_sign_out(page: Any) -> None:
    page.goto("/")
    page.get_by_role("heading", name="Sign in").wait_for()
    shot(page, "01-sign-in")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Wrong email or password." in alert.inner_text()
    shot(page, "02-sign-in-wrong-password")

    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", name="Good", exact=False).wait_for()
    assert page.get_by_role("link", name="Tasks").first.is_visible()
    shot(page, "03-home-launcher")

    page.reload()
    page.get_by_role("combobox", name="Search everything").wait_for()
    assert page.get_by_role("button", name="Account menu").is_visible()

    page.get_by_role("button", name="Apps").click()
    page.get_by_role("dialog", name="Apps").get_by_role("link", name="Tasks").wait_for()
    shot(page, "04-app-launcher")
    page.keyboard.press("Escape")

    sign_out(page)
    page.reload()
    page.get_by_role("heading", name="Sign in").wait_for()


def test_generic_form_shows_server_validation_inline_then_creates(page: Any, server: Server) -> None:
    sign_in(page, *ADMIN)
    page.goto("/r/tasks/tasks/new")
    page.get_by_role("heading", name="New task").wait_for()
    # Client-side first: the required title.
    page.get_by_role("button", name="Create task").click()
    assert page.locator("#f-title-error").inner_text() == "This field is required."
    # Only the server knows time zones: its 422 problem lands under the field it points at.
    page.get_by_label("Title").fill("Plan the Mars office")
    page.get_by_label("Due timezone").fill("Mars/Olympus_Mons")
    page.get_by_role("button", name="Create task").click()
    error = page.locator("#f-due_timezone-error")
    error.wait_for()
    assert "unknown time zone" in error.inner_text()
    assert page.get_by_label("Due timezone").get_attribute("aria-invalid") == "true"
    page.get_by_label("Due timezone").scroll_into_view_if_needed()
    shot(page, "05-task-form-server-error")

    page.get_by_label("Due timezone").fill("Europe/Paris")
    page.get_by_label("Priority").fill("3")
    page.get_by_role("button", name="Create task").click()
    page.get_by_role("heading", name="Plan the Mars office").wait_for()
    assert "/tasks/t/" in page.url or "/r/tasks/tasks/" in page.url
    shot(page, "06-task-detail")

    page.get_by_role("tab", name="History").click()
    page.get_by_role("list", name="History").wait_for()
    assert "created" in page.get_by_role("list", name="History").inner_text()
    shot(page, "07-task-history")


def test_list_search_sort_and_export(page: Any, server: Server) -> None:
    h = server.token(*ADMIN)
    for title in ("Zebra crossing survey", "Alpha release notes", "Midway review"):
        server.api("POST", "/api/v1/tasks/tasks", h, json={"title": title})
    sign_in(page, *ADMIN)
    page.goto("/r/tasks/tasks")
    page.get_by_role("link", name="Alpha release notes").wait_for()
    page.get_by_role("button", name="Title").click()
    expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "ascending")
    # The sorted page arrives after the header shows the new order: wait for the rows.
    expect(page.locator("tbody tr").first).to_contain_text("Alpha release notes")
    page.get_by_label("Search tasks").fill("zebra")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert "q=zebra" in page.url
    shot(page, "08-generic-list")
    with page.expect_download() as dl:
        page.get_by_role("button", name="More list actions").click()
        page.get_by_role("menuitem", name="Export CSV").click()
    path = dl.value.path()
    assert path and "Zebra crossing survey" in open(path, encoding="utf-8").read()


def test_kanban_drag_moves_the_card(page: Any, server: Server) -> None:
    h = server.token(*ADMIN)
    card = server.api("POST", "/api/v1/tasks/tasks", h, json={"title": "Drag me across", "position": 10})
    server.api("POST", "/api/v1/tasks/tasks", h, json={"title": "Already in progress", "status": "in_progress", "position": 5})
    sign_in(page, *ADMIN)
    page.goto("/tasks")
    source = page.locator("article.task-card", has_text="Drag me across")
    source.wait_for()
    shot(page, "09-board")
    target = page.get_by_role("listitem", name="In progress column")
    source.drag_to(target)
    target.locator("article.task-card", has_text="Drag me across").wait_for()
    moved = wait_for(lambda: server.api("GET", f"/api/v1/tasks/tasks/{card['id']}", h)["status"] == "in_progress")
    assert moved, "the move action was not called"
    after = server.api("GET", f"/api/v1/tasks/tasks/{card['id']}", h)
    assert after["position"] > 5  # dropped below the card already there
    shot(page, "10-board-after-drag")

    # Keyboard: Alt+→ moves the focused card on to Done.
    target.locator("article.task-card", has_text="Drag me across").focus()
    page.keyboard.press("Alt+ArrowRight")
    assert wait_for(lambda: server.api("GET", f"/api/v1/tasks/tasks/{card['id']}", h)["status"] == "done")


def test_task_page_subtasks_comments_checklist(page: Any, server: Server) -> None:
    h = server.token(*ADMIN)
    task = server.api("POST", "/api/v1/tasks/tasks", h, json={"title": "Prepare the offsite", "description": "Venue, agenda, travel."})
    sign_in(page, *ADMIN)
    page.goto(f"/tasks/t/{task['id']}")
    page.get_by_role("heading", name="Prepare the offsite").wait_for()
    page.get_by_label("New checklist item").fill("Book the venue")
    page.get_by_label("New checklist item").press("Enter")
    page.get_by_role("checkbox", name="Book the venue").wait_for()
    page.get_by_label("New subtask").fill("Draft the agenda")
    page.get_by_label("New subtask").press("Enter")
    page.get_by_role("link", name="Draft the agenda").wait_for()
    page.get_by_label("Write a comment").fill("Lisbon looks good.")
    page.get_by_role("button", name="Comment").click()
    page.get_by_text("Lisbon looks good.").wait_for()
    shot(page, "11-task-page", full=True)
    subs = server.api("GET", f"/api/v1/tasks/tasks?parent_id={task['id']}", h)["items"]
    assert [s["title"] for s in subs] == ["Draft the agenda"]
    assert server.api("GET", f"/api/v1/tasks/tasks/{task['id']}", h)["checklist"] == [{"text": "Book the venue", "done": False}]

    page.get_by_role("link", name="My tasks").first.click()
    page.wait_for_url("**/tasks/mine")
    page.get_by_label("Quick add a task").fill("Call the caterer")
    page.get_by_label("Quick add a task").press("Enter")
    page.get_by_role("link", name="Call the caterer").wait_for()
    shot(page, "12-my-tasks")


def test_admin_creates_user_who_cannot_see_the_other_org(page: Any, server: Server) -> None:
    other = server.token(*OTHER_ADMIN, org="second")
    secret = server.api("POST", "/api/v1/tasks/tasks", other, json={"title": "Second org secret plan"})

    sign_in(page, *ADMIN)
    page.goto("/admin/users")
    page.get_by_role("button", name="Add user").click()
    dialog = page.get_by_role("dialog", name="Add a user")
    dialog.get_by_label("Email").fill("new.person@example.com")
    dialog.get_by_label("Name").fill("New Person")
    dialog.get_by_label("Set a password now").check()
    dialog.locator("#invite-password").fill("new-person-pass")
    shot(page, "13-admin-add-user")
    dialog.get_by_role("button", name="Add user").click()
    page.get_by_role("link", name="New Person").wait_for()
    shot(page, "14-admin-users")
    sign_out(page)

    sign_in(page, "new.person@example.com", "new-person-pass")
    page.goto("/tasks/list")
    page.get_by_role("heading", name="Tasks").wait_for()
    page.wait_for_load_state("networkidle")
    assert "Second org secret plan" not in page.content()
    search = page.get_by_role("combobox", name="Search everything")
    search.fill("secret plan")
    page.get_by_text("Nothing matches").wait_for()
    page.goto(f"/tasks/t/{secret['id']}")
    page.get_by_text("does not exist or you may not see it").wait_for()
    shot(page, "15-other-org-not-found")
    # A member does not administer: no Add user button.
    page.goto("/admin/users")
    page.get_by_role("heading", name="Users").wait_for()
    assert page.get_by_role("button", name="Add user").count() == 0


def test_roles_api_keys_and_audit(page: Any, server: Server) -> None:
    sign_in(page, *ADMIN)
    page.goto("/admin/roles")
    page.get_by_role("heading", name="owner").wait_for()
    page.get_by_role("button", name="New role").click()
    page.get_by_label("Name").fill("sales-lead")
    page.get_by_label("Permissions").fill("tasks.tasks.read")
    page.get_by_label("Permissions").press("Enter")
    page.get_by_role("button", name="Create role").click()
    page.get_by_role("heading", name="sales-lead").wait_for()
    shot(page, "16-admin-roles", full=True)

    page.goto("/admin/api-keys")
    page.get_by_role("button", name="Create API key").click()
    page.get_by_label("Name").fill("Nightly export")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("secret-key")
    key.wait_for()
    secret = key.inner_text()
    assert secret.startswith("nxk_")
    shot(page, "17-api-key-shown-once")
    page.get_by_role("button", name="I have saved it").click()
    page.get_by_role("cell", name="Nightly export").wait_for()
    assert secret not in page.content()
    shot(page, "18-admin-api-keys")

    page.goto("/admin/audit")
    page.get_by_role("table", name="Audit entries").wait_for()
    page.get_by_label("Action").fill("signed_in")
    expect(page.locator("tbody code").first).to_have_text("signed_in")
    assert wait_for(lambda: set(page.locator("tbody code").all_inner_texts()) == {"signed_in"})
    shot(page, "19-admin-audit")


def test_phone_width_dark_theme_and_offline_shell(browser: Any, server: Server) -> None:
    ctx = browser.new_context(base_url=server.url, viewport={"width": 390, "height": 844}, color_scheme="dark",
                              is_mobile=True, has_touch=True)
    page = ctx.new_page()
    try:
        sign_in(page, *ADMIN)
        shot(page, "20-phone-home-dark")
        page.get_by_role("button", name="Open navigation").click()
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").wait_for()
        shot(page, "21-phone-navigation")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
        page.get_by_role("listitem", name="To do column").wait_for()
        shot(page, "22-phone-board")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "the page scrolls sideways"

        # Installable: a manifest and a service worker that keeps the shell for offline use.
        manifest = page.evaluate("fetch('/manifest.json').then(r => r.json())")
        assert manifest["display"] == "standalone" and any(i["sizes"] == "512x512" for i in manifest["icons"])
        assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        cached = "caches.keys().then(ks => Promise.all(ks.map(k => caches.open(k).then(c => c.match('/index.html'))))).then(r => r.some(Boolean))"
        assert wait_for(lambda: page.evaluate(cached)), "the service worker did not cache the shell"
        ctx.set_offline(True)
        page.reload()
        page.get_by_text("NEXUS is out of reach").wait_for()
        shot(page, "23-offline-shell")
    finally:
        ctx.close()
