"""The directory's admin pages in a real browser: an LDAP connection (against a real slapd)
is created, tested and synced from the generic record views; a SCIM token is shown once and
provisions a user over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.apps.identity.ldap_server import GROUPS, PEOPLE, SYNC_DN, SYNC_PW, person, slapd

from .conftest import ADMIN, Server, shot, sign_in

pytestmark = pytest.mark.e2e


def test_ldap_connection_test_and_sync_from_the_admin_pages(page: Any, server: Server) -> None:
    ldif = (person("erin", "Erin Example", "erin@corp.example", "erin-pw-1")
            + f"dn: cn=ops,{GROUPS}\nobjectClass: groupOfNames\ncn: ops\nmember: uid=erin,{PEOPLE}\n\n")
    with slapd(ldif) as directory:
        sign_in(page, *ADMIN)
        page.get_by_role("link", name="LDAP / AD").click()
        page.get_by_role("heading", name="LDAP connections").wait_for()
        page.goto("/r/identity/ldap-connections/new")
        shot(page, "39-ldap-connection-form", full=True)
        page.locator("#f-name").fill("Corp LDAP")
        page.locator("#f-url").fill(directory.url)
        page.locator("#f-bind_dn").fill(SYNC_DN)
        page.locator("#f-bind_password").fill(SYNC_PW)
        page.locator("#f-user_base_dn").fill(PEOPLE)
        page.locator("#f-group_base_dn").fill(GROUPS)
        page.get_by_role("button", name="Create ldap connection").click()
        page.get_by_role("heading", name="Corp LDAP").wait_for()
        assert SYNC_PW not in page.content()
        page.get_by_role("button", name="Test", exact=True).click()
        page.get_by_text("Bound and found 1 users and 1 groups.").first.wait_for()
        shot(page, "40-ldap-connection-tested")
        page.get_by_role("button", name="Sync", exact=True).click()
        page.get_by_role("dialog").get_by_role("button", name="Sync").click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            page.reload()
            page.get_by_role("heading", name="Corp LDAP").wait_for()
            if page.get_by_text('"created": 1').count() or page.get_by_text('"created":1').count():
                break
            time.sleep(0.5)
        shot(page, "41-ldap-connection-synced", full=True)
        page.goto("/admin/users")
        page.get_by_role("cell", name="erin@corp.example").wait_for()
        shot(page, "42-ldap-user-imported")


def test_scim_token_is_shown_once_and_provisions(page: Any, server: Server) -> None:
    sign_in(page, *ADMIN)
    page.get_by_role("link", name="SCIM tokens").click()
    page.get_by_role("heading", name="SCIM tokens").wait_for()
    page.goto("/r/identity/scim-tokens/new")
    page.locator("#f-name").fill("Okta")
    page.get_by_role("button", name="Create scim token").click()
    shown = page.get_by_test_id("secret-token")
    shown.wait_for()
    token = shown.inner_text()
    assert token.startswith("nxscim_")
    shot(page, "43-scim-token-shown-once")
    page.get_by_role("button", name="I have saved it").click()
    r = httpx.post(server.url + "/scim/v2/Users", headers={"Authorization": f"Bearer {token}",
                                                         "Content-Type": "application/scim+json"},
                   json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "frank@corp.example",
                         "displayName": "Frank"})
    assert r.status_code == 201, r.text
    page.goto("/admin/users")
    page.get_by_role("cell", name="frank@corp.example").wait_for()
    assert token not in page.content()
