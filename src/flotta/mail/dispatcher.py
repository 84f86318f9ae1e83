"""Deliver the outbox: a task owned by the Runtime, woken after commits and sweeping regularly.

Each attempt is claimed in the database first (its `attempts` counted), so two processes never
send one message twice; a failed attempt is retried with doubling back-off, up to MAX_ATTEMPTS.
With no SMTP host (the embedded default) each message is printed to the log once instead and
stays in the outbox, where the demo portal shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.clock import Clock
from flotta.mail.models import OutboxMessage
from flotta.mail.repository import OutboxRepository
from flotta.mail.smtp import SmtpSender, build_message
from flotta.settings import MailSettings

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 8
SWEEP_S = 15.0
# The reason shown in the outbox for messages only printed to the log.
LOGGED_ONLY = "not sent: no SMTP host is configured (FLOTTA_MAIL__SMTP_HOST); printed in the log"


def retry_base_s(settings: MailSettings) -> float:
    """First retry delay: longer than one attempt can last, so a slow send is never doubled."""
    return max(60.0, 3 * settings.smtp_timeout_s + 5)


def due_at(message: OutboxMessage, base_s: float) -> datetime:
    """When the next attempt is due: at creation, then 1, 3, 7, 15… times the base after it.

    Derived from `created_at` and `attempts` alone, so every process agrees without a column.
    """
    return message.created_at + timedelta(seconds=base_s * (2**message.attempts - 1))


class MailDispatcher:
    """Owns the delivery task; `wake()` after a commit that queued mail makes it prompt."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: MailSettings,
        clock: Clock,
        *,
        sweep_s: float = SWEEP_S,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.sweep_s = sweep_s
        self.sender = SmtpSender(settings) if settings.smtp_host else None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._wake.set()  # a first sweep at once: mail may wait from before a restart
        self._task = asyncio.create_task(self._run(), name="flotta-mail-dispatcher")

    def wake(self) -> None:
        """Deliver now rather than at the next sweep (call on the server's event loop)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop at once; a message cut off mid-send is retried later (it stays unsent)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.sweep_s)
            self._wake.clear()
            try:
                await self.deliver_due()
            except Exception as exc:  # the database may be away for a moment: sweep again later
                log.warning("mail sweep failed; retrying at the next sweep", error=repr(exc))

    async def deliver_due(self) -> int:
        """One sweep: handle every unsent message that is due; how many were handled."""
        async with self.sessions() as db:
            pending = await OutboxRepository(db).unsent(MAX_ATTEMPTS)
        now = self.clock.now()
        handled = 0
        base = retry_base_s(self.settings)
        for message in pending:
            if self.sender is not None and due_at(message, base) > now:
                continue
            try:
                handled += await self._handle(message)
            except Exception as exc:  # one bad row must not stop the others
                log.warning("mail could not be handled", message_id=message.id, error=repr(exc))
        return handled

    async def _handle(self, message: OutboxMessage) -> int:
        if self.sender is None:
            return await self._print(message)
        return await self._send(message, self.sender)

    async def _print(self, message: OutboxMessage) -> int:
        """Log the message once (the claim makes it once across processes)."""
        if not await self._claim(message, MAX_ATTEMPTS, last_error=LOGGED_ONLY):
            return 0
        # Indented, so text in a message cannot pass for a log line of its own.
        body = "\n".join(f"    | {line}" for line in message.body_text.splitlines())
        log.info(
            f"e-mail not sent (no SMTP host configured): to {message.to_address}, "
            f"subject {message.subject!r}, message {message.id}; it reads:\n{body}\n"
        )
        return 1

    async def _send(self, message: OutboxMessage, sender: SmtpSender) -> int:
        attempt = message.attempts + 1
        if not await self._claim(message, attempt):
            return 0
        try:
            await sender.send(
                build_message(
                    self.settings,
                    to=message.to_address,
                    subject=message.subject,
                    body=message.body_text,
                    now=self.clock.now(),
                )
            )
        except Exception as exc:
            await self._record_failure(message, attempt, exc)
            return 1
        async with self.sessions() as db, db.begin():
            await OutboxRepository(db).mark_sent(message.id, self.clock.now())
        log.info("e-mail sent", message_id=message.id, to=message.to_address, attempt=attempt)
        return 1

    async def _claim(self, message: OutboxMessage, attempts: int, **values: str) -> bool:
        async with self.sessions() as db, db.begin():
            return await OutboxRepository(db).claim(
                message.id, message.attempts, attempts, **values
            )

    async def _record_failure(self, message: OutboxMessage, attempt: int, exc: Exception) -> None:
        # The class and the server's words; aiosmtplib never puts the password in them.
        error = f"{type(exc).__name__}: {exc}".strip()
        async with self.sessions() as db, db.begin():
            await OutboxRepository(db).mark_failed(message.id, error)
        final = attempt >= MAX_ATTEMPTS
        log.warning(
            "e-mail not delivered; giving up" if final else "e-mail not delivered; will retry",
            message_id=message.id,
            to=message.to_address,
            attempt=attempt,
            error=error,
        )
