"""Fan-out of committed records to each app's live streams, sinks and config receivers.

Live Fleet API streams get records from memory through bounded per-client buffers. Sinks read
the durable record log from their `delivered_through` position instead, so delivery survives a
restart and never holds records in memory: ingest only wakes them. Each sink delivers ordered
batches, retrying with exponential backoff; a batch that fails `max_attempts` times becomes a
dead letter and delivery moves on. Every attempt series is a row of the delivery log.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.adapters.sinks import open_sink
from flotta.billing.meter import Meter
from flotta.clock import Clock
from flotta.devices.directory import Directory
from flotta.gateway.hub import Hub
from flotta.ports.sinks import Sink
from flotta.telemetry.entitlements import Entitlements
from flotta.telemetry.ingest import Ingest
from flotta.telemetry.models import TelemetryDeliveryRow, TelemetrySinkRow
from flotta.telemetry.receivers import (
    LANE_CAPACITY,
    DeliveryPolicy,
    ReceiverLane,
    ReceiverOpener,
    open_receiver,
)
from flotta.telemetry.recordlog import RecordLog
from flotta.telemetry.records import StreamRecord

log = structlog.get_logger(__name__)

SinkOpener = Callable[[TelemetrySinkRow], Sink | Awaitable[Sink]]


class Subscription:
    """One live stream client's bounded buffer. While catching up from the log it may lag
    (the log holds what it missed); once live, overflowing it ends the stream with a reason."""

    def __init__(self, client_id: str, capacity: int) -> None:
        self.client_id = client_id
        self.queue: asyncio.Queue[StreamRecord] = asyncio.Queue(capacity)
        self.live = False
        self.lagged = False
        self.closed_reason: str | None = None
        self.changed = asyncio.Event()

    def offer(self, record: StreamRecord) -> None:
        """Buffer a record without ever blocking ingest."""
        if self.closed_reason is not None:
            return
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            if self.live:
                size = self.queue.maxsize
                self.closed_reason = f"slow consumer: more than {size} records waiting"
            else:
                self.lagged = True
        self.changed.set()

    def end(self, reason: str) -> None:
        """End the stream (client gone, server stopping); the reader returns at once."""
        self.closed_reason = self.closed_reason or reason
        self.changed.set()

    def catch_up_again(self) -> None:
        """Forget the buffer: the caller re-reads the log from its cursor instead."""
        self.lagged = False
        while not self.queue.empty():
            self.queue.get_nowait()


def open_sink_adapter(row: TelemetrySinkRow, clock: Clock | None = None) -> Sink:
    """The sink adapter for a row."""
    return open_sink(row.kind, row.settings, row.format, row.secret, clock=clock)


async def _opened(opener: SinkOpener, row: TelemetrySinkRow) -> Sink:
    sink = opener(row)
    if inspect.isawaitable(sink):
        return await sink
    return sink


@dataclass
class _Replay:
    start: datetime
    end: datetime
    after: int = 0


class SinkWorker:
    """Delivers one sink's records in order, from the log, through retries and dead letters."""

    def __init__(self, row: TelemetrySinkRow, deps: Dispatcher) -> None:
        self.sink_id = row.id
        self.client_id = row.client_id
        self.through = row.delivered_through
        self._row = row
        self._deps = deps
        self._sink: Sink | None = None
        self._replays: deque[_Replay] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def replay(self, start: datetime, end: datetime) -> None:
        self._replays.append(_Replay(start, end))
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self._sink is not None:
            with contextlib.suppress(Exception):
                await self._sink.close()

    async def run(self) -> None:
        """Deliver until stopped; a replay runs between live batches."""
        policy, records = self._deps.policy, self._deps.records
        while not self._stopping:
            try:
                if self._replays:
                    await self._replay_step(self._replays[0])
                    continue
                batch = await records.after(self.client_id, self.through, policy.batch_size)
                if batch:
                    await self._deliver(batch, replay=False)
                    continue
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
                    self._sink = await _opened(self._deps.opener, self._row)
                await self._sink.deliver(allowed)
                entry.status, entry.error = "delivered", None
            except Exception as exc:  # every failure is a nack, whatever the adapter raised
                entry.error = f"{type(exc).__name__}: {exc}"[:500]
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
        """Write the attempt series, and (live batches that are settled) the new position."""
        now = self._deps.clock.now()
        settled = entry is None or entry.status != "retrying"
        async with self._deps.sessions() as db, db.begin():
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


class Dispatcher:
    """Routes committed records to live subscribers and wakes each app's sink workers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        records: RecordLog,
        entitlements: Entitlements,
        clock: Clock,
        *,
        opener: SinkOpener | None = None,
        receivers: ReceiverOpener | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> None:
        self.sessions = sessions
        self.records = records
        self.entitlements = entitlements
        self.clock = clock
        self.opener = opener or (lambda row: open_sink_adapter(row, clock))
        self.policy = policy or DeliveryPolicy()
        self._subscribers: dict[str, set[Subscription]] = {}
        self._workers: dict[int, SinkWorker] = {}
        self._receivers = receivers
        self._lanes: dict[int, ReceiverLane] = {}
        self._to_route: asyncio.Queue[StreamRecord] = asyncio.Queue(LANE_CAPACITY)
        self._router: asyncio.Task[None] | None = None
        self.unrouted = 0

    async def start(self) -> None:
        """Start a worker for every enabled sink, each resuming from `delivered_through`."""
        async with self.sessions() as db:
            rows = (
                await db.scalars(select(TelemetrySinkRow).where(TelemetrySinkRow.enabled))
            ).all()
        for row in rows:
            self.add_sink(row)
        if self._receivers is not None:
            loop = asyncio.get_running_loop()
            self._router = loop.create_task(self._route(), name="telemetry-receivers")

    async def stop(self) -> None:
        for worker in list(self._workers.values()):
            await worker.stop()
        self._workers.clear()
        if self._router is not None:
            self._router.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._router
        for lane in self._lanes.values():
            await lane.close()
        for subs in self._subscribers.values():
            for sub in subs:
                sub.end("the server is shutting down")

    def publish(self, records: Sequence[StreamRecord]) -> None:
        """Hand committed records on: never blocks (buffers are bounded, sinks read the log)."""
        woken: set[str] = set()
        for record in records:
            for sub in self._subscribers.get(record.client_id, ()):
                sub.offer(record)
            woken.add(record.client_id)
            if self._router is not None:
                try:
                    self._to_route.put_nowait(record)
                except asyncio.QueueFull:
                    self.unrouted += 1
        for worker in self._workers.values():
            if worker.client_id in woken:
                worker.wake()

    async def _route(self) -> None:
        """Send each record on to its config's receiver, if the config names one."""
        assert self._receivers is not None
        while True:
            record = await self._to_route.get()
            ref = await self.entitlements.config_for(record.client_id, record.vin)
            if ref is None or not ref.hostname or not ref.port:
                continue
            if not await self.entitlements.streaming(record.client_id, record.vin):
                continue
            lane = self._lanes.get(ref.id)
            if lane is None or lane.ref != ref:  # a changed config: its new receiver
                if lane is not None:
                    await lane.close()
                lane = ReceiverLane(ref, self._receivers, self.policy, self.clock)
                self._lanes[ref.id] = lane
            lane.offer(record)

    def subscribe(self, client_id: str, capacity: int) -> Subscription:
        sub = Subscription(client_id, capacity)
        self._subscribers.setdefault(client_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.client_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.client_id]

    def add_sink(self, row: TelemetrySinkRow) -> None:
        """Start delivering to a (new or re-enabled) sink."""
        if row.id in self._workers or not row.enabled:
            return
        worker = SinkWorker(row, self)
        worker.task = asyncio.get_running_loop().create_task(
            worker.run(), name=f"telemetry-sink-{row.id}"
        )
        self._workers[row.id] = worker

    async def remove_sink(self, sink_id: int) -> None:
        worker = self._workers.pop(sink_id, None)
        if worker is not None:
            await worker.stop()

    def replay(self, sink_id: int, start: datetime, end: datetime) -> bool:
        """Queue a re-send of the records created in [start, end]; False if not delivering."""
        worker = self._workers.get(sink_id)
        if worker is None:
            return False
        worker.replay(start, end)
        return True

    def position(self, sink_id: int) -> int | None:
        """The last record this process delivered (or dead-lettered) to the sink."""
        worker = self._workers.get(sink_id)
        return worker.through if worker is not None else None


class TelemetryStreams:
    """Ingest, the record log and the dispatcher, started and stopped together (Runtime)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        directory: Directory,
        hub: Hub,
        clock: Clock,
        *,
        meter: Meter | None,
        opener: SinkOpener | None = None,
        receivers: ReceiverOpener | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> None:
        self.records = RecordLog(sessions)
        self.entitlements = Entitlements(sessions, directory, clock)
        self.dispatcher = Dispatcher(
            sessions,
            self.records,
            self.entitlements,
            clock,
            opener=opener,
            receivers=receivers if receivers is not None else open_receiver(clock),
            policy=policy,
        )
        self.ingest = Ingest(
            hub,
            self.records,
            self.entitlements,
            clock,
            meter=meter,
            publish=self.dispatcher.publish,
        )

    async def start(self) -> None:
        await self.dispatcher.start()
        self.entitlements.start()
        self.ingest.start()

    async def stop(self) -> None:
        await self.ingest.stop()
        await self.dispatcher.stop()
        await self.entitlements.stop()
        self.records.close()
