"""The kernel mailer against a real SMTP server (aiosmtpd, with AUTH), and its settings."""

from __future__ import annotations

import email
import socket
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from nexus.kernel.config import ConfigError, Settings
from nexus.kernel.mail import MailError, MailNotConfigured, send_mail


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Box:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.Message]] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.endswith("@refused.test"):
            return "550 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            self.logins.append((user, password))
            return AuthResult(success=user == "mailer@example.com" and password == "p@ss:w/rd")
        return AuthResult(success=False)


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"NEXUS_DATA_DIR": str(tmp_path), "NEXUS_SECRET_KEY": "k" * 40, **env})


async def test_sends_with_login_through_a_real_smtp_server(tmp_path: Path) -> None:
    box = Box()
    port = _port()
    ctl = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate, auth_require_tls=False)
    ctl.start()
    try:
        good = _settings(tmp_path, NEXUS_SMTP_URL=f"smtp://mailer%40example.com:p%40ss%3Aw%2Frd@127.0.0.1:{port}",
                         NEXUS_MAIL_FROM="Acme <ops@acme.test>")
        await send_mail(good, "ada@example.com", "Hello", "Plain body", "<p>HTML body</p>")
        [(rcpt, msg)] = box.messages
        assert rcpt == ["ada@example.com"] and msg["From"] == "Acme <ops@acme.test>" and msg["Subject"] == "Hello"
        assert msg.is_multipart() and "HTML body" in msg.as_string()
        assert box.logins == [("mailer@example.com", "p@ss:w/rd")]
        # A recipient the server refuses: an error that names the failure, never the password.
        with pytest.raises(MailError) as info:
            await send_mail(good, "nobody@refused.test", "Hello", "x")
        assert "p@ss" not in str(info.value) and "SMTPRecipientsRefused" in str(info.value)
        with pytest.raises(ValueError):
            await send_mail(good, "ada@example.com\r\nBcc: eve@evil.test", "Hello", "x")
        assert len(box.messages) == 1
    finally:
        ctl.stop()
    with pytest.raises(MailError):  # nobody listens there any more
        await send_mail(good, "ada@example.com", "Hello", "x")
    with pytest.raises(MailNotConfigured):
        await send_mail(_settings(tmp_path), "ada@example.com", "Hello", "x")


@pytest.mark.parametrize(("env", "message"), [
    ({"NEXUS_SMTP_URL": "http://mail.example.com"}, "NEXUS_SMTP_URL must be"),
    ({"NEXUS_SMTP_URL": "smtp://"}, "NEXUS_SMTP_URL must be"),
    ({"NEXUS_SMTP_URL": "smtp://u:secret@mail.example.com:99999"}, "invalid port"),
    ({"NEXUS_MAIL_FROM": "no address"}, "NEXUS_MAIL_FROM"),
    ({"NEXUS_PUBLIC_URL": "nexus.example.com"}, "NEXUS_PUBLIC_URL"),
])
def test_bad_mail_settings_fail_at_start_without_echoing_passwords(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, **env)
    assert message in str(info.value) and "secret" not in str(info.value)


def test_public_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    assert _settings(tmp_path, NEXUS_PUBLIC_URL="https://nexus.example.com/").public_url == "https://nexus.example.com"
