"""Outgoing mail through the SMTP server named by NEXUS_SMTP_URL.

`smtp://[user:password@]host[:port]` (port 25 by default; `?starttls=1` upgrades with
STARTTLS), `smtps://…` (implicit TLS, port 465). Without a URL nothing can be sent and
`MailNotConfigured` says so; callers decide whether that is an error for the user. The
standard library's smtplib runs in a worker thread so that the event loop never waits on
the network; passwords never reach a log line.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from nexus.kernel.config import Settings, redact_url

log = logging.getLogger("nexus.mail")
TIMEOUT_SECONDS = 20


class MailNotConfigured(Exception):
    """NEXUS_SMTP_URL is not set."""


class MailError(Exception):
    """The SMTP server refused the message or could not be reached (message is safe to show)."""


def build_message(settings: Settings, to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    if any(c in to + subject for c in "\r\n"):
        raise ValueError("header values cannot contain line breaks")
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=settings.mail_from.rsplit("@", 1)[-1].strip("> "))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to system mail
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def _send_sync(url: str, msg: EmailMessage) -> None:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or "localhost"
    implicit_tls = parts.scheme == "smtps"
    port = parts.port or (465 if implicit_tls else 25)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if implicit_tls:
        smtp = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
    try:
        smtp.ehlo()
        if not implicit_tls and query.get("starttls", ["0"])[0] in ("1", "true", "yes"):
            smtp.starttls(context=context)
            smtp.ehlo()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(msg)
    finally:
        try:
            smtp.quit()
        except smtplib.SMTPException:
            smtp.close()


async def send_mail(settings: Settings, to: str, subject: str, text: str, html: str | None = None) -> None:
    """Send one message; raises MailNotConfigured or MailError."""
    if not settings.smtp_url:
        raise MailNotConfigured("NEXUS_SMTP_URL is not set")
    msg = build_message(settings, to, subject, text, html)
    try:
        await asyncio.to_thread(_send_sync, settings.smtp_url, msg)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("mail not sent", extra={"fields": {"server": redact_url(settings.smtp_url),
                                                       "error": type(exc).__name__}})
        raise MailError(f"The mail server did not accept the message ({type(exc).__name__}).") from None
    log.info("mail sent", extra={"fields": {"server": redact_url(settings.smtp_url), "subject": subject[:80]}})
