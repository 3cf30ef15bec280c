"""Account security in a real browser: enrol an authenticator app from the QR page (codes
computed with pyotp, as a phone would), sign out, sign in through the MFA step; register a
passkey with Chromium's virtual authenticator (CDP WebAuthn domain) and sign in with it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from .conftest import ADMIN, Server, shot, sign_out

pytestmark = pytest.mark.e2e
PASSWORD = "e2e security pass 1"


class Phone:
    """An authenticator app: one code per time step, as the server accepts each step once."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last = -1

    def code(self) -> str:
        while True:
            now = int(time.time() // 30)
            step = max(self.last + 1, now - 1)
            if step <= now + 1:
                self.last = step
                return self.totp.at(step * 30)
            time.sleep(1)


def new_person(server: Server) -> str:
    admin = server.token(*ADMIN)
    email = f"sec-{secrets.token_hex(3)}@example.com"
    server.api("POST", "/api/v1/identity/users", admin, json={"email": email, "name": "Sec Person",
                                                              "password": PASSWORD, "roles": ["member"]})
    return email


def password_step(page: Any, email: str) -> None:
    page.goto("/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_enrol_totp_then_sign_in_with_the_mfa_step(page: Any, server: Server) -> None:
    email = new_person(server)
    password_step(page, email)
    page.get_by_role("combobox", name="Search everything").wait_for()
    page.get_by_role("button", name="Account menu").click()
    page.get_by_role("menuitem", name="Account security").click()
    page.get_by_role("heading", name="Account security").wait_for()
    page.get_by_role("button", name="Add authenticator app").click()
    dialog = page.get_by_role("dialog", name="Add an authenticator app")
    dialog.get_by_role("img", name="QR code to scan with your authenticator app").wait_for()
    shot(page, "security-01-totp-qr")
    dialog.get_by_role("button", name="Can’t scan? Show the key").click()
    phone = Phone(dialog.get_by_test_id("totp-secret").inner_text().strip())
    dialog.get_by_label("Code from the app").fill(phone.code())
    dialog.get_by_role("button", name="Turn on").click()
    codes = page.get_by_test_id("recovery-codes")
    codes.wait_for()
    recovery = [c.strip() for c in codes.inner_text().split("\n") if c.strip()]
    assert len(recovery) == 10
    shot(page, "security-02-recovery-codes")
    page.get_by_role("button", name="I have saved them").click()
    page.get_by_text("Authenticator app", exact=True).first.wait_for()
    assert page.get_by_text("10", exact=True).is_visible()
    sign_out(page)

    # The password alone is not enough any more.
    password_step(page, email)
    page.get_by_role("heading", name="Two-step sign-in").wait_for()
    page.get_by_label("Authentication code").fill("000000" if phone.totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    assert "tries left" in page.get_by_role("alert").inner_text()
    shot(page, "security-03-mfa-step-wrong-code")
    page.get_by_label("Authentication code").fill(phone.code())
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("combobox", name="Search everything").wait_for()
    sign_out(page)

    # A recovery code works once.
    password_step(page, email)
    page.get_by_role("button", name="Use a recovery code").click()
    page.get_by_label("Recovery code").fill(recovery[0])
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("combobox", name="Search everything").wait_for()

    # The session list shows this browser, and the history the sign-ins just made.
    page.goto("/account/security")
    page.get_by_role("table", name="Active sessions").get_by_text("This device").wait_for()
    history = page.get_by_role("table", name="Sign-in history")
    history.get_by_text("Recovery code").first.wait_for()
    assert history.get_by_text("Failed", exact=False).count() >= 1
    shot(page, "security-04-account-page", full=True)


def test_passkey_with_chromium_virtual_authenticator(browser: Any, server: Server) -> None:
    # WebAuthn needs a domain for the RP ID (not an IP address): use localhost.
    url = server.url.replace("127.0.0.1", "localhost")
    ctx = browser.new_context(base_url=url, viewport={"width": 1366, "height": 860})
    ctx.set_default_timeout(15_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        cdp = ctx.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}})
        email = new_person(server)
        password_step(page, email)
        page.get_by_role("combobox", name="Search everything").wait_for()
        page.goto("/account/security")
        page.get_by_role("button", name="Add a passkey").click()
        page.get_by_test_id("recovery-codes").wait_for()
        page.get_by_role("button", name="I have saved them").click()
        page.get_by_text("Passkey", exact=True).first.wait_for()
        shot(page, "security-05-passkey-added")
        sign_out(page)
        # No user name: the passkey says who it is.
        page.get_by_role("button", name="Sign in with a passkey").click()
        page.get_by_role("combobox", name="Search everything").wait_for()
        page.goto("/account/security")
        page.get_by_role("table", name="Sign-in history").get_by_text("Passkey").first.wait_for()
        sign_out(page)
        # The password step now asks for the second factor, which the passkey gives.
        password_step(page, email)
        page.get_by_role("heading", name="Two-step sign-in").wait_for()
        page.get_by_role("button", name="Use a passkey").click()
        page.get_by_role("combobox", name="Search everything").wait_for()
        assert not errors, errors
    finally:
        ctx.close()


def test_admin_requires_mfa_for_the_org_from_the_security_page(page: Any, server: Server) -> None:
    from .conftest import OTHER_ADMIN, sign_in

    # The second org, so that the other tests' admin keeps signing in with a password alone.
    sign_in(page, *OTHER_ADMIN, org="second")
    page.goto("/admin/security")
    page.get_by_role("heading", name="Sign-in and password policy").wait_for()
    page.get_by_label("Minimum password length").fill("4")
    page.get_by_role("button", name="Save policy").click()
    page.get_by_text("must be between 8 and 128").wait_for()
    page.get_by_label("Minimum password length").fill("12")
    page.get_by_role("button", name="Save policy").click()
    page.get_by_text("Security policy saved.").wait_for()
    shot(page, "security-06-admin-policy", full=True)
    token = server.token(*OTHER_ADMIN, org="second")
    assert server.api("GET", "/api/v1/identity/security-policy", token)["password_min_length"] == 12


@pytest.fixture
def mail_server() -> Iterator[tuple[Server, list[Any]]]:
    """A `nexus serve` of its own, configured to mail through an aiosmtpd the test runs."""
    import email as email_lib
    import shutil
    import signal
    import subprocess
    import tempfile
    from pathlib import Path

    import httpx
    from aiosmtpd.controller import Controller

    from .conftest import NEXUS, _env, _free_port

    inbox: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            inbox.append(email_lib.message_from_bytes(envelope.content))
            return "250 OK"

    smtp_port, port = _free_port(), _free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=smtp_port)
    ctl.start()
    data_dir = Path(tempfile.mkdtemp(prefix="nexus-e2e-mail-"))
    url = f"http://127.0.0.1:{port}"
    env = {**_env(data_dir), "NEXUS_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "NEXUS_PUBLIC_URL": url}
    proc = subprocess.Popen([NEXUS, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "nexus serve exited"
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "nexus serve did not become ready"
            time.sleep(0.2)
        yield Server(url, data_dir, env), inbox
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        ctl.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_forgot_password_mail_link_sets_a_new_password(browser: Any, mail_server: tuple[Server, list[Any]]) -> None:
    import re

    srv, inbox = mail_server
    ctx = browser.new_context(base_url=srv.url, viewport={"width": 1366, "height": 860})
    ctx.set_default_timeout(15_000)
    page = ctx.new_page()
    try:
        page.goto("/")
        page.get_by_role("button", name="Forgot your password?").click()
        page.get_by_label("Email").fill(ADMIN[0])
        page.get_by_role("button", name="Send the link").click()
        page.get_by_text("a reset link is on its way", exact=False).wait_for()
        deadline = time.monotonic() + 20
        while not inbox and time.monotonic() < deadline:
            time.sleep(0.2)
        assert inbox, "no mail arrived"
        body = inbox[0].get_payload(decode=True).decode()
        link = re.findall(r"https?://\S+", body)[0]
        assert link.startswith(srv.url + "/reset-password?token=nxp_")
        page.goto(link)
        page.get_by_role("heading", name="Choose a new password").wait_for()
        page.get_by_label("New password", exact=True).fill("password123")
        page.get_by_label("Repeat it").fill("password123")
        page.get_by_role("button", name="Set password").click()
        page.get_by_text("common", exact=False).first.wait_for()
        shot(page, "security-07-reset-refused-common")
        page.get_by_label("New password", exact=True).fill("a new and long passphrase")
        page.get_by_label("Repeat it").fill("a new and long passphrase")
        page.get_by_role("button", name="Set password").click()
        page.get_by_text("Your password is set.").wait_for()
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("Email").fill(ADMIN[0])
        page.get_by_label("Password").fill("a new and long passphrase")
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.get_by_role("combobox", name="Search everything").wait_for()
        # The link is single-use.
        page.goto(link)
        page.get_by_label("New password", exact=True).fill("yet another passphrase")
        page.get_by_label("Repeat it").fill("yet another passphrase")
        page.get_by_role("button", name="Set password").click()
        page.get_by_text("invalid, expired or already used", exact=False).wait_for()
    finally:
        ctx.close()
