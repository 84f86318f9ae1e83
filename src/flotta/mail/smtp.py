"""Hand one e-mail to an SMTP server with aiosmtplib."""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

import aiosmtplib

from flotta.settings import MailSettings


def sender_domain(from_address: str) -> str:
    """The domain of the From address (for Message-ID and EHLO); "localhost" if none."""
    _, address = parseaddr(from_address)
    return address.rpartition("@")[2] or "localhost"


def build_message(
    settings: MailSettings, *, to: str, subject: str, body: str, now: datetime
) -> EmailMessage:
    """A plain-text UTF-8 message; header values with line breaks are refused by `email`."""
    message = EmailMessage()
    message["From"] = settings.from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender_domain(settings.from_address))
    message.set_content(body)
    return message


class SmtpSender:
    """Delivers through the configured relay; raises on any refusal or network failure."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    @property
    def deadline_s(self) -> float:
        """The most one delivery may take: connect, optional TLS, login, and DATA."""
        return 3 * self.settings.smtp_timeout_s

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        password = s.smtp_password.get_secret_value()
        async with asyncio.timeout(self.deadline_s):
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=password if s.smtp_username else None,
                use_tls=s.smtp_tls,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout_s,
                # Never guess our own FQDN (a slow DNS lookup on some hosts); use the sender's.
                local_hostname=sender_domain(s.from_address),
            )
