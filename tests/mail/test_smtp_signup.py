"""Sign-up mail over a real SMTP exchange on loopback, and its link followed in the portal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.live import LiveDemo, start_live_demo
from tests.mail.smtp_sink import smtp_sink
from tests.portal.account_support import (
    Browser,
    link_in,
    mails_to,
    new_email,
    sign_up,
    text_of,
)


def test_the_verification_mail_arrives_by_smtp_and_its_link_verifies(
    demo_factory: Callable[..., LiveDemo], capfd: pytest.CaptureFixture[str]
) -> None:
    with smtp_sink() as (sink, port):
        demo = demo_factory(vehicles=0, mail={"smtp_host": "127.0.0.1", "smtp_port": port})
        email = new_email()
        with Browser(demo.base_url) as browser:
            sign_up(browser, email)  # takes the CSRF token from the form and its cookie
            [mail] = sink.wait_for(1, timeout=10)
            assert mail["To"] == email
            assert mail["Subject"] == "Confirm your e-mail address for Flotta"
            link = link_in(mail.get_content(), "/portal/verify")
            confirmed = browser.get(link)
            assert confirmed.status_code == 200
            assert f"{email} — verified" in text_of(browser.get("/portal/account"))
    [row] = mails_to(demo, email)
    assert row.sent_at is not None and row.attempts == 1
    output = capfd.readouterr()
    token = link.split("token=")[1]
    assert token not in output.out + output.err  # with SMTP configured, links stay out of logs
    assert "e-mail sent" in output.out


def test_the_dispatcher_starts_and_stops_with_the_runtime(tmp_path: Path) -> None:
    demo = start_live_demo(tmp_path, vehicles=0)
    dispatcher = demo.handle.runtime.mail

    async def running() -> bool:
        await asyncio.sleep(0)
        return dispatcher._task is not None and not dispatcher._task.done()

    assert demo.call(running())
    demo.stop()
    assert dispatcher._task is None
