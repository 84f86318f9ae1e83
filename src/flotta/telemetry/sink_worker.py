"""One sink's delivery: ordered batches from the record log, retries, dead letters, replays.

The worker runs only while its process holds the sink's lease (`sink:<id>`), and reads its
position from the database when it takes the lease, so a takeover resumes where the previous
holder stopped. Each position it writes is fenced by the lease in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import update

from flotta.ports.sinks import Sink
from flotta.telemetry.delivery import error_text
from flotta.telemetry.leases import LeasedWork, LeaseLost
from flotta.telemetry.models import TelemetryDeliveryRow, TelemetrySinkRow
from flotta.telemetry.records import StreamRecord

if TYPE_CHECKING:
    from flotta.telemetry.dispatch import Dispatcher

log = structlog.get_logger(__name__)


@dataclass
class _Replay:
    start: datetime
    end: datetime
    after: int = 0


@dataclass
class _Entry:
    first: int
    last: int
    records: int
    replay: bool
    attempts: int = 0
    status: str = "retrying"
    error: str | None = None
    id: int | None = None


def lease_name(sink_id: int) -> str:
    return f"sink:{sink_id}"


class SinkWorker(LeasedWork):
    """Delivers one sink's records in order, from the log, through retries and dead letters."""

    def __init__(self, row: TelemetrySinkRow, deps: Dispatcher) -> None:
        super().__init__(lease_name(row.id), deps.leases)
        self.sink_id = row.id
        self.client_id = row.client_id
        self.through = row.delivered_through
        self._row = row
        self._deps = deps
        self._sink: Sink | None = None
        self._replays: deque[_Replay] = deque()

    def settings_differ(self, row: TelemetrySinkRow) -> bool:
        """Whether `row` (the sink as stored now) delivers differently from this worker's."""
        mine = self._row
        return (row.kind, row.format, row.settings, row.secret) != (
            mine.kind,
            mine.format,
            mine.settings,
            mine.secret,
        )

    def replay(self, start: datetime, end: datetime) -> None:
        self._replays.append(_Replay(start, end))
        self._wake.set()

    async def run(self) -> None:
        """Take the lease, then deliver until stopped or the lease is lost."""
        try:
            if not await self._deps.leases.acquire(self.lease):
                return  # another process delivers this sink
            through = await self._position()
            if through is None:
                # Paused or edited since the read that started this worker (a scan's, racing
                # the change): the sink as stored now is started again by the next scan.
                await self._deps.leases.release([self.lease])
                return
            self.through = through
            await self._deliver_while_held()
        except LeaseLost:
            log.warning("sink lease taken over by another process", sink=self.sink_id)
        except Exception:  # the database went away: the next look for work starts again
            log.exception("sink worker stopped", sink=self.sink_id)
        finally:
            # Ended on its own too (the lease lost, the sink deleted elsewhere): nobody calls
            # stop() then, and the sink's connection would stay open.
            await self._forget_sink()

    async def _position(self) -> int | None:
        """Where delivery resumes, read once the lease is held; None when the sink is paused or
        delivers differently now than the row this worker was made from."""
        async with self._deps.sessions() as db:
            row = await db.get(TelemetrySinkRow, self.sink_id)
        if row is None:
            raise LeaseLost(self.lease)  # deleted meanwhile
        if not row.enabled or self.settings_differ(row):
            return None
        return row.delivered_through

    async def _deliver_while_held(self) -> None:
        policy, records, leases = self._deps.policy, self._deps.records, self._deps.leases
        while not self._stopping and leases.holds(self.lease):
            try:
                if self._replays:
                    await self._replay_step(self._replays[0])
                    continue
                batch = await records.after(self.client_id, self.through, policy.batch_size)
                if batch:
                    await self._deliver(batch, replay=False)
                    continue
            except LeaseLost:
                raise
            except Exception:  # the database went away: wait, then resume from `through`
                log.exception("sink delivery failed", sink=self.sink_id)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), policy.poll_s)

    async def _replay_step(self, job: _Replay) -> None:
        size = self._deps.policy.batch_size
        batch = await self._deps.records.between(
            self.client_id, job.start, job.end, job.after, size
        )
        if batch:
            job.after = batch[-1].cursor
            await self._deliver(batch, replay=True)
        if len(batch) < size:
            self._replays.popleft()

    async def _deliver(self, batch: list[StreamRecord], *, replay: bool) -> None:
        """One batch through its attempt series; logged, and `through` moved past it."""
        pairs = await self._deps.entitlements.streaming_pairs({(r.client_id, r.vin) for r in batch})
        allowed = [r for r in batch if (r.client_id, r.vin) in pairs]
        first, last = batch[0].cursor, batch[-1].cursor
        if not allowed:
            if not replay:
                await self._record(None, first, last, 0, replay=False)
            return
        entry = _Entry(first, last, len(allowed), replay)
        policy = self._deps.policy
        while True:
            entry.attempts += 1
            try:
                if self._sink is None:
                    self._sink = self._deps.opener(self._row)
                await self._sink.deliver(allowed)
                entry.status, entry.error = "delivered", None
            except Exception as exc:  # every failure is a nack, whatever the adapter raised
                entry.error = error_text(exc)
                entry.status = "dead" if entry.attempts >= policy.max_attempts else "retrying"
                await self._forget_sink()
            if entry.status != "retrying" or self._stopping:
                break
            entry.id = await self._record(entry, first, last, len(allowed), replay=replay)
            await self._deps.clock.sleep(policy.backoff(entry.attempts))
        await self._record(entry, first, last, len(allowed), replay=replay)

    async def _forget_sink(self) -> None:
        if self._sink is not None:
            with contextlib.suppress(Exception):
                await self._sink.close()
            self._sink = None

    async def _record(
        self, entry: _Entry | None, first: int, last: int, count: int, *, replay: bool
    ) -> int | None:
        """Write the attempt series, and (live batches that are settled) the new position,
        in one transaction fenced by the lease."""
        now = self._deps.clock.now()
        settled = entry is None or entry.status != "retrying"
        async with self._deps.sessions() as db, db.begin():
            await self._deps.leases.fence(db, self.lease)
            row_id = None
            if entry is not None:
                row = await db.get(TelemetryDeliveryRow, entry.id) if entry.id else None
                if row is None:
                    row = TelemetryDeliveryRow(
                        sink_id=self.sink_id,
                        first_record_id=first,
                        last_record_id=last,
                        records=count,
                        replay=replay,
                        created_at=now,
                    )
                    db.add(row)
                row.status, row.attempts = entry.status, entry.attempts
                row.last_error, row.updated_at = entry.error, now
                await db.flush()
                row_id = row.id
            if settled and not replay:
                await db.execute(
                    update(TelemetrySinkRow)
                    .where(TelemetrySinkRow.id == self.sink_id)
                    .values(delivered_through=last)
                )
        if settled and not replay:
            self.through = last
        return row_id
