"""The outbox dispatcher against a real database and a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.clock import ManualClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.migrate import upgrade_to_head
from flotta.mail.dispatcher import LOGGED_ONLY, MAX_ATTEMPTS, MailDispatcher
from flotta.mail.models import OutboxMessage
from flotta.mail.service import queue_mail
from flotta.settings import MailSettings
from tests.mail.smtp_sink import Sink, free_port, smtp_sink

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessions]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'mail.db'}")
    await upgrade_to_head(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def sink() -> Any:
    with smtp_sink() as running:
        yield running


def settings_for(port: int, **extra: Any) -> MailSettings:
    return MailSettings(
        **{"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout_s": 5, **extra}
    )


async def queue(sessions: Sessions, clock: ManualClock, to: str, body: str = "Hi") -> int:
    async with sessions() as db, db.begin():
        message = await queue_mail(db, clock, to=to, subject="Test", body=body)
        return message.id


async def row(sessions: Sessions, message_id: int) -> OutboxMessage:
    async with sessions() as db:
        found = await db.execute(select(OutboxMessage).where(OutboxMessage.id == message_id))
        return found.scalar_one()


async def test_delivers_a_queued_message_with_proper_headers(
    sessions: Sessions, sink: tuple[Sink, int]
) -> None:
    received, port = sink
    clock = ManualClock()
    message_id = await queue(sessions, clock, "ada@example.com", "Open http://x/y\nBye")
    dispatcher = MailDispatcher(sessions, settings_for(port), clock)
    assert await dispatcher.deliver_due() == 1
    [mail] = await asyncio.to_thread(received.wait_for, 1)
    assert mail["To"] == "ada@example.com"
    assert mail["From"] == "Flotta <no-reply@flotta.local>"
    assert mail["Subject"] == "Test"
    assert mail["Message-ID"].endswith("@flotta.local>")
    assert "Open http://x/y" in mail.get_content()
    assert received.envelopes[0] == ("no-reply@flotta.local", ["ada@example.com"])
    sent = await row(sessions, message_id)
    assert sent.sent_at == clock.now() and sent.attempts == 1 and sent.last_error is None
    assert await dispatcher.deliver_due() == 0  # never sent twice


async def test_a_refused_message_is_retried_with_back_off(
    sessions: Sessions, sink: tuple[Sink, int]
) -> None:
    received, port = sink
    received.refuse = 2
    clock = ManualClock()
    message_id = await queue(sessions, clock, "bo@example.com")
    dispatcher = MailDispatcher(sessions, settings_for(port), clock)
    await dispatcher.deliver_due()
    failed = await row(sessions, message_id)
    assert failed.sent_at is None and failed.attempts == 1
    assert failed.last_error is not None and "Mailbox busy" in failed.last_error
    assert await dispatcher.deliver_due() == 0  # not due yet
    clock.advance(59)
    assert await dispatcher.deliver_due() == 0
    clock.advance(1)
    assert await dispatcher.deliver_due() == 1  # second attempt, refused again
    clock.advance(60)
    assert await dispatcher.deliver_due() == 0  # the third waits twice as long (3 min in all)
    clock.advance(60)
    assert await dispatcher.deliver_due() == 1
    delivered = await row(sessions, message_id)
    assert delivered.sent_at is not None and delivered.attempts == 3
    assert delivered.last_error is None
    assert len(received.messages) == 1


async def test_gives_up_after_the_last_attempt(sessions: Sessions) -> None:
    clock = ManualClock()
    message_id = await queue(sessions, clock, "cy@example.com")
    dispatcher = MailDispatcher(sessions, settings_for(free_port(), smtp_timeout_s=1), clock)
    for _ in range(MAX_ATTEMPTS + 2):
        await dispatcher.deliver_due()
        clock.advance(86400)
    gave_up = await row(sessions, message_id)
    assert gave_up.attempts == MAX_ATTEMPTS and gave_up.sent_at is None
    assert gave_up.last_error is not None and "Connect" in gave_up.last_error


async def test_two_dispatchers_never_send_one_message_twice(
    sessions: Sessions, sink: tuple[Sink, int]
) -> None:
    received, port = sink
    clock = ManualClock()
    for index in range(5):
        await queue(sessions, clock, f"p{index}@example.com")
    first = MailDispatcher(sessions, settings_for(port), clock)
    second = MailDispatcher(sessions, settings_for(port), clock)
    counts = await asyncio.gather(first.deliver_due(), second.deliver_due())
    assert sum(counts) == 5
    await asyncio.to_thread(received.wait_for, 5)
    await asyncio.sleep(0.2)
    assert sorted(to for _, [to] in received.envelopes) == [f"p{i}@example.com" for i in range(5)]


async def test_a_bad_row_does_not_stop_the_others(
    sessions: Sessions, sink: tuple[Sink, int]
) -> None:
    received, port = sink
    clock = ManualClock()
    bad = await queue(sessions, clock, "evil@example.com\r\nBcc: victim@example.com")
    good = await queue(sessions, clock, "fine@example.com")
    dispatcher = MailDispatcher(sessions, settings_for(port), clock)
    await dispatcher.deliver_due()
    assert (await row(sessions, good)).sent_at is not None
    refused = await row(sessions, bad)
    assert refused.sent_at is None and refused.last_error
    await asyncio.to_thread(received.wait_for, 1)
    assert all("victim" not in str(rcpt) for _, rcpt in received.envelopes)


async def test_without_smtp_each_message_is_logged_once_and_kept(sessions: Sessions) -> None:
    clock = ManualClock()
    message_id = await queue(sessions, clock, "dee@example.com", "Your link: http://x/verify")
    dispatcher = MailDispatcher(sessions, MailSettings(), clock)
    with structlog.testing.capture_logs() as logs:
        assert await dispatcher.deliver_due() == 1
        assert await MailDispatcher(sessions, MailSettings(), clock).deliver_due() == 0
        clock.advance(86400)
        assert await dispatcher.deliver_due() == 0
    [entry] = logs
    assert entry["log_level"] == "info"
    assert "dee@example.com" in entry["event"] and "http://x/verify" in entry["event"]
    kept = await row(sessions, message_id)
    assert kept.sent_at is None and kept.last_error == LOGGED_ONLY


async def test_the_smtp_password_never_reaches_the_log_or_the_outbox(
    sessions: Sessions, sink: tuple[Sink, int]
) -> None:
    _, port = sink
    clock = ManualClock()
    message_id = await queue(sessions, clock, "eve@example.com")
    secret = "s3cret-smtp-password"
    settings = settings_for(port, smtp_username="flotta", smtp_password=secret)
    with structlog.testing.capture_logs() as logs:
        await MailDispatcher(sessions, settings, clock).deliver_due()
    failed = await row(sessions, message_id)
    assert failed.last_error is not None and "AUTH" in failed.last_error  # sink has no AUTH
    assert secret not in failed.last_error
    assert logs and all(secret not in repr(entry) for entry in logs)


async def test_the_task_wakes_on_demand_and_stops_cleanly(
    sessions: Sessions, sink: tuple[Sink, int]
) -> None:
    received, port = sink
    received.delay_s = 5  # stop() must not wait for a slow server
    clock = ManualClock()
    dispatcher = MailDispatcher(sessions, settings_for(port), clock, sweep_s=3600)
    dispatcher.start()
    await asyncio.sleep(0.1)
    await queue(sessions, clock, "fay@example.com")
    dispatcher.wake()
    await asyncio.sleep(0.5)  # the send is now waiting on the slow server
    await asyncio.wait_for(dispatcher.stop(), timeout=2)
    assert received.messages == []
